//! Option probabilities from the top log-probabilities an OpenAI-compatible server returns, by the
//! in-process scorer's definition: P(option c) = P(the reply starts with the digits of c and,
//! where another option extends c, the next token is not a digit), renormalised over the options.
//!
//! A server lists only the most probable tokens (at most 20), so a digit outside them counts as
//! probability 0; on a model that answers at all, the options' digits are among them. Tokenizers
//! that keep a number whole (Llama 3 has one token for "10") are covered too: a reply that starts
//! with the token "10" and one that starts with "1" then "0" both start with the digits of 10.

use std::collections::BTreeMap;

/// The tokens a server listed at one position, with their log-probabilities.
pub type TopTokens = Vec<(String, f64)>;

/// The digit strings after which the next token is needed: every proper prefix of an option
/// code ("1" for "10"), and every code that another code extends.
pub fn branch_prefixes(codes: &[String]) -> Vec<String> {
    let mut prefixes: Vec<String> =
        codes.iter().flat_map(|code| (1..code.len()).map(move |end| code[..end].to_string())).collect();
    prefixes.sort();
    prefixes.dedup();
    prefixes
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// The probability of each digit string a listed token spells. At the reply's start leading
/// whitespace is dropped (tokenizers that write a space before a word's first token).
fn digit_tokens(top: &[(String, f64)], reply_start: bool) -> BTreeMap<String, f64> {
    let mut mass = BTreeMap::new();
    for (token, logprob) in top {
        let text = if reply_start { token.trim_start() } else { token.as_str() };
        if is_digits(text) && logprob.is_finite() {
            *mass.entry(text.to_string()).or_insert(0.0) += logprob.exp();
        }
    }
    mass
}

/// The distribution over `codes` (in their order) from the first position's tokens and, for
/// each of [`branch_prefixes`], the tokens after it. A missing branch is an error naming it.
pub fn option_distribution(
    codes: &[String],
    first: &[(String, f64)],
    branches: &BTreeMap<String, TopTokens>,
) -> Result<Vec<f64>, String> {
    let first = digit_tokens(first, true);
    let mut after = BTreeMap::new();
    for prefix in branch_prefixes(codes) {
        let top = branches.get(&prefix).ok_or_else(|| format!("no tokens after '{prefix}'"))?;
        after.insert(prefix, top.as_slice());
    }
    let extended = |code: &str| codes.iter().any(|other| other.len() > code.len() && other.starts_with(code));
    let scores: Vec<f64> = codes
        .iter()
        .map(|code| {
            first
                .iter()
                .filter(|(token, _)| code.starts_with(token.as_str()))
                .map(|(token, probability)| {
                    let rest = &code[token.len()..];
                    let continuation = if rest.is_empty() {
                        match after.get(code.as_str()).filter(|_| extended(code)) {
                            // The reply must stop being a number here.
                            Some(next) => {
                                let digits: f64 = next
                                    .iter()
                                    .filter(|(token, _)| token.starts_with(|c: char| c.is_ascii_digit()))
                                    .map(|(_, logprob)| logprob.exp())
                                    .sum();
                                (1.0 - digits).max(0.0)
                            }
                            None => 1.0,
                        }
                    } else {
                        after
                            .get(token.as_str())
                            .map(|next| digit_tokens(next, false).get(rest).copied().unwrap_or(0.0))
                            .unwrap_or(0.0)
                    };
                    probability * continuation
                })
                .sum()
        })
        .collect();
    let total: f64 = scores.iter().sum();
    if total > 0.0 && total.is_finite() {
        Ok(scores.iter().map(|score| score / total).collect())
    } else {
        Ok(vec![1.0 / codes.len() as f64; codes.len()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(n: u32) -> Vec<String> {
        (1..=n).map(|code| code.to_string()).collect()
    }

    fn top(entries: &[(&str, f64)]) -> TopTokens {
        entries.iter().map(|(token, probability)| (token.to_string(), probability.ln())).collect()
    }

    #[test]
    fn one_digit_options_are_the_renormalised_first_token() {
        let first = top(&[("2", 0.5), ("1", 0.25), ("The", 0.2), ("3", 0.05)]);
        let distribution = option_distribution(&codes(3), &first, &BTreeMap::new()).unwrap();
        for (got, want) in distribution.iter().zip([0.25 / 0.8, 0.5 / 0.8, 0.05 / 0.8]) {
            assert!((got - want).abs() < 1e-12, "{distribution:?}");
        }
    }

    #[test]
    fn ten_splits_the_first_digit_by_what_follows_it() {
        assert_eq!(branch_prefixes(&codes(10)), vec!["1".to_string()]);
        let first = top(&[("1", 0.6), ("5", 0.4)]);
        // After "1": "0" (the reply is 10) with 0.25, a digit that makes no option ("2") with
        // 0.25, the end of the number with 0.5.
        let branches = BTreeMap::from([("1".to_string(), top(&[("0", 0.25), ("2", 0.25), ("<|im_end|>", 0.5)]))]);
        let distribution = option_distribution(&codes(10), &first, &branches).unwrap();
        let (one, five, ten) = (0.6 * 0.5, 0.4, 0.6 * 0.25);
        let total = one + five + ten;
        assert!((distribution[0] - one / total).abs() < 1e-12);
        assert!((distribution[4] - five / total).abs() < 1e-12);
        assert!((distribution[9] - ten / total).abs() < 1e-12);
        assert!((distribution.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_whole_number_token_counts_for_its_option() {
        // Llama 3 writes "10" as one token: it and "1" then "0" both spell 10.
        let first = top(&[("10", 0.3), ("1", 0.3), (" 2", 0.4)]);
        let branches = BTreeMap::from([("1".to_string(), top(&[("0", 0.5), (".", 0.5)]))]);
        let distribution = option_distribution(&codes(10), &first, &branches).unwrap();
        let (one, two, ten) = (0.3 * 0.5, 0.4, 0.3 + 0.3 * 0.5);
        let total = one + two + ten;
        assert!((distribution[9] - ten / total).abs() < 1e-12, "{distribution:?}");
        assert!((distribution[1] - two / total).abs() < 1e-12, "a space before the first digit is no other token");
    }

    #[test]
    fn a_missing_branch_is_named_and_no_digit_at_all_is_uniform() {
        let error = option_distribution(&codes(10), &top(&[("1", 1.0)]), &BTreeMap::new()).unwrap_err();
        assert!(error.contains("'1'"), "{error}");
        let uniform = option_distribution(&codes(4), &top(&[("Yes", 1.0)]), &BTreeMap::new()).unwrap();
        assert_eq!(uniform, vec![0.25; 4]);
    }
}
