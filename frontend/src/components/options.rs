//! A question's options as people read them: labels, the model's reply, and the bars of human
//! shares beside the model's probabilities (the question and review pages).

use leptos::prelude::*;
use shared::{Answer, HumanDistribution, QuestionOption};

/// Width of one option's slot in the bar charts, in SVG units.
const SLOT_WIDTH: f64 = 30.0;
const BAR_WIDTH: f64 = 11.0;
const CHART_HEIGHT: f64 = 56.0;
/// Room under the bars for the option codes.
const LABEL_HEIGHT: f64 = 14.0;

/// `2. Rather important`, or the bare code when it is not an option.
pub fn option_label(options: &[QuestionOption], code: Option<u32>) -> String {
    match code {
        Some(code) => match options.iter().find(|option| option.code == code) {
            Some(option) => format!("{code}. {}", option.text),
            None => code.to_string(),
        },
        None => "no option".to_string(),
    }
}

/// The model's reply, shortened for a table cell.
pub fn reply_text(answer: &Answer) -> String {
    const MAX_REPLY_CHARS: usize = 80;
    let reply = answer.raw_reply.clone().unwrap_or_else(|| "—".to_string());
    if reply.chars().count() > MAX_REPLY_CHARS {
        format!("{}…", reply.chars().take(MAX_REPLY_CHARS).collect::<String>())
    } else {
        reply
    }
}

/// One slot per option: the human share, and the model's probability (or a marker on its answer);
/// the culture-unaware answer's code is underlined.
#[component]
pub fn OptionBars(
    options: Vec<QuestionOption>,
    human: Option<HumanDistribution>,
    model_code: Option<u32>,
    model_distribution: Option<Vec<f64>>,
    unaware_code: Option<u32>,
) -> impl IntoView {
    let width = SLOT_WIDTH * options.len() as f64;
    let height = CHART_HEIGHT + LABEL_HEIGHT;
    let slots = options
        .iter()
        .enumerate()
        .map(|(index, option)| {
            let x = SLOT_WIDTH * index as f64;
            let human_share = human
                .as_ref()
                .and_then(|human| human.shares.iter().find(|share| share.code == option.code))
                .map_or(0.0, |share| share.share);
            let model_share = model_distribution.as_ref().and_then(|distribution| distribution.get(index).copied());
            let human_height = CHART_HEIGHT * human_share;
            let chosen = model_code == Some(option.code);
            let model_mark = match model_share {
                Some(share) => {
                    let bar_height = CHART_HEIGHT * share;
                    view! {
                        <rect class="model" x=x + 3.0 + BAR_WIDTH y=CHART_HEIGHT - bar_height width=BAR_WIDTH height=bar_height>
                            <title>{format!("model {:.0}%", share * 100.0)}</title>
                        </rect>
                    }
                    .into_any()
                }
                None if chosen => {
                    let tip_x = x + 3.0 + 1.5 * BAR_WIDTH;
                    let points = format!(
                        "{},{} {},{} {},{}",
                        tip_x - 5.0,
                        CHART_HEIGHT,
                        tip_x + 5.0,
                        CHART_HEIGHT,
                        tip_x,
                        CHART_HEIGHT - 9.0
                    );
                    view! { <polygon class="model" points=points><title>"the model's answer"</title></polygon> }.into_any()
                }
                None => ().into_any(),
            };
            let label_class = if unaware_code == Some(option.code) { "code unaware" } else { "code" };
            view! {
                <g>
                    <title>{format!("{}. {}: {:.0}% of people", option.code, option.text, human_share * 100.0)}</title>
                    <rect class="slot" x=x y=0 width=SLOT_WIDTH height=CHART_HEIGHT></rect>
                    <rect class="human" x=x + 3.0 y=CHART_HEIGHT - human_height width=BAR_WIDTH height=human_height></rect>
                    {model_mark}
                    <text class=label_class x=x + SLOT_WIDTH / 2.0 y=height - 2.0 text-anchor="middle">{option.code}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="option-bars" viewBox=format!("0 0 {width} {height}") width=width height=height role="img">
            {slots}
        </svg>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_option_is_labelled_with_its_code_and_text() {
        let options = vec![
            QuestionOption { code: 1, text: "Very important".into() },
            QuestionOption { code: 2, text: "Rather important".into() },
        ];
        assert_eq!(option_label(&options, Some(2)), "2. Rather important");
        assert_eq!(option_label(&options, Some(7)), "7");
        assert_eq!(option_label(&options, None), "no option");
    }
}
