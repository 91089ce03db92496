//! The fixed facts of the paper: the 18 cultures and the 13 WVS topics with their question ranges.

use shared::Region;

/// A culture as the paper names it: code, article and adjective for the prompts, and its region.
pub struct CultureSpec {
    pub country_code: &'static str,
    pub name: &'static str,
    pub article: &'static str,
    pub adjective: &'static str,
    pub region: Region,
}

const fn culture(
    country_code: &'static str,
    name: &'static str,
    article: &'static str,
    adjective: &'static str,
    region: Region,
) -> CultureSpec {
    CultureSpec { country_code, name, article, adjective, region }
}

/// The 18 cultures in the paper's order.
pub const CULTURES: [CultureSpec; 18] = [
    culture("USA", "United States", "an", "American", Region::NorthAmerica),
    culture("CAN", "Canada", "a", "Canadian", Region::NorthAmerica),
    culture("BOL", "Bolivia", "a", "Bolivian", Region::LatinAmerica),
    culture("BRA", "Brazil", "a", "Brazilian", Region::LatinAmerica),
    culture("GBR", "United Kingdom", "a", "British", Region::Europe),
    culture("NLD", "Netherlands", "a", "Dutch", Region::Europe),
    culture("DEU", "Germany", "a", "German", Region::Europe),
    culture("UKR", "Ukraine", "a", "Ukrainian", Region::Europe),
    culture("CHN", "China", "a", "Chinese", Region::Asia),
    culture("RUS", "Russia", "a", "Russian", Region::Europe),
    culture("IND", "India", "an", "Indian", Region::Asia),
    culture("THA", "Thailand", "a", "Thai", Region::Asia),
    culture("KEN", "Kenya", "a", "Kenyan", Region::Africa),
    culture("NGA", "Nigeria", "a", "Nigerian", Region::Africa),
    culture("ETH", "Ethiopia", "an", "Ethiopian", Region::Africa),
    culture("ZWE", "Zimbabwe", "a", "Zimbabwean", Region::Africa),
    culture("AUS", "Australia", "an", "Australian", Region::Oceania),
    culture("NZL", "New Zealand", "a", "New Zealand", Region::Oceania),
];

/// A WVS topic and the inclusive range of question numbers it covers.
pub struct TopicSpec {
    pub name: &'static str,
    pub first: u32,
    pub last: u32,
}

/// The 13 topics in the paper's order (topic index = position). Q234A belongs to topic 11.
pub const TOPICS: [TopicSpec; 13] = [
    TopicSpec { name: "Social Values, Attitudes & Stereotypes", first: 1, last: 45 },
    TopicSpec { name: "Happiness and Well-being", first: 46, last: 56 },
    TopicSpec { name: "Social Capital, Trust & Organizational Membership", first: 57, last: 105 },
    TopicSpec { name: "Economic Values", first: 106, last: 111 },
    TopicSpec { name: "Corruption", first: 112, last: 120 },
    TopicSpec { name: "Migration", first: 121, last: 130 },
    TopicSpec { name: "Security", first: 131, last: 151 },
    TopicSpec { name: "Postmaterialist Index", first: 152, last: 157 },
    TopicSpec { name: "Science & Technology", first: 158, last: 163 },
    TopicSpec { name: "Religious Values", first: 164, last: 175 },
    TopicSpec { name: "Ethical Values and Norms", first: 176, last: 198 },
    TopicSpec { name: "Political Interest & Political Participation", first: 199, last: 234 },
    TopicSpec { name: "Political Culture & Political Regimes", first: 235, last: 259 },
];

/// The number in a WVS question id: `Q234A` → 234.
pub fn question_number(question_id: &str) -> Option<u32> {
    let digits: String = question_id.strip_prefix('Q')?.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The topic index of a WVS question id, `None` outside Q1–Q259.
pub fn topic_of(question_id: &str) -> Option<u8> {
    let number = question_number(question_id)?;
    TOPICS.iter().position(|topic| (topic.first..=topic.last).contains(&number)).map(|index| index as u8)
}

/// Questions the pipeline drops: Q223 (party vote choice) and Q260–Q290 (demographics).
pub fn is_excluded(question_id: &str) -> bool {
    question_id == "Q223" || question_number(question_id).is_some_and(|n| (260..=290).contains(&n))
}

/// "Zero questions": their option codes start at 0 (Q94–Q105, Q119, Q122–Q129, Q241–Q249).
pub fn codes_start_at_zero(question_id: &str) -> bool {
    question_number(question_id)
        .is_some_and(|n| (94..=105).contains(&n) || n == 119 || (122..=129).contains(&n) || (241..=249).contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_wvs_ranges() {
        assert_eq!(topic_of("Q1"), Some(0));
        assert_eq!(topic_of("Q45"), Some(0));
        assert_eq!(topic_of("Q46"), Some(1));
        assert_eq!(topic_of("Q105"), Some(2));
        assert_eq!(topic_of("Q234A"), Some(11));
        assert_eq!(topic_of("Q259"), Some(12));
        assert_eq!(topic_of("Q260"), None);
        assert_eq!(topic_of("X1"), None);
    }

    #[test]
    fn exclusions_and_zero_questions() {
        assert!(is_excluded("Q223"));
        assert!(is_excluded("Q260") && is_excluded("Q290"));
        assert!(!is_excluded("Q259") && !is_excluded("Q234A"));
        assert!(codes_start_at_zero("Q94") && codes_start_at_zero("Q119"));
        assert!(codes_start_at_zero("Q249") && !codes_start_at_zero("Q250"));
        assert!(!codes_start_at_zero("Q121") && !codes_start_at_zero("Q93"));
    }
}
