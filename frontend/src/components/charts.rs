//! SVG drawn by the app itself (no chart library): colour scales, a linear scale with round
//! ticks, a grouped horizontal bar chart and a square heatmap.

use leptos::prelude::*;

/// Maps a domain interval linearly onto a range of SVG coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    pub domain: (f64, f64),
    pub range: (f64, f64),
}

impl Linear {
    pub fn at(&self, value: f64) -> f64 {
        let (d0, d1) = self.domain;
        let (r0, r1) = self.range;
        if (d1 - d0).abs() < f64::EPSILON {
            return (r0 + r1) / 2.0;
        }
        r0 + (value - d0) / (d1 - d0) * (r1 - r0)
    }
}

/// Round tick values (steps of 1, 2 or 5 × 10^k) covering `[min, max]` with about `count` ticks.
pub fn ticks(min: f64, max: f64, count: usize) -> Vec<f64> {
    if !(min.is_finite() && max.is_finite()) || max <= min || count == 0 {
        return Vec::new();
    }
    let rough = (max - min) / count as f64;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|step| *step >= rough).unwrap_or(rough);
    let first = (min / step).ceil() as i64;
    let last = (max / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

type Rgb = (f64, f64, f64);

fn mix(stops: &[(f64, Rgb)], t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let upper = stops.iter().position(|(at, _)| *at >= t).unwrap_or(stops.len() - 1).max(1);
    let (t0, c0) = stops[upper - 1];
    let (t1, c1) = stops[upper];
    let f = if t1 > t0 { (t - t0) / (t1 - t0) } else { 0.0 };
    let channel = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    format!("#{:02x}{:02x}{:02x}", channel(c0.0, c1.0), channel(c0.1, c1.1), channel(c0.2, c1.2))
}

/// Light to dark blue for t in [0, 1].
pub fn sequential_color(t: f64) -> String {
    mix(&[(0.0, (239.0, 246.0, 255.0)), (0.5, (107.0, 174.0, 214.0)), (1.0, (8.0, 48.0, 107.0))], t)
}

/// Red (−1) through near-white (0) to blue (+1).
pub fn diverging_color(t: f64) -> String {
    mix(&[(0.0, (178.0, 24.0, 43.0)), (0.5, (247.0, 247.0, 247.0)), (1.0, (33.0, 102.0, 172.0))], (t + 1.0) / 2.0)
}

/// Whether text on this t of [`sequential_color`] should be white.
pub fn dark_background(t: f64) -> bool {
    t > 0.6
}

/// One bar: its label, its value (`None`: no bar) and a tooltip.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: Option<f64>,
    pub title: String,
}

/// Bars drawn together under a heading (e.g. a region).
#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    pub label: String,
    pub bars: Vec<Bar>,
}

const CHART_WIDTH: f64 = 640.0;
const LABEL_WIDTH: f64 = 56.0;
const VALUE_LABEL_WIDTH: f64 = 48.0;
const BAR_HEIGHT: f64 = 14.0;
const BAR_GAP: f64 = 4.0;
const GROUP_HEADING_HEIGHT: f64 = 20.0;
const AXIS_HEIGHT: f64 = 22.0;
/// Fill colours of the groups, in turn.
const GROUP_COLORS: [&str; 6] = ["#2b6cb0", "#2f855a", "#b7791f", "#c53030", "#6b46c1", "#2c7a7b"];

/// A horizontal bar chart, bars grouped under headings; every bar is a `rect.bar` with a title.
/// `reference` draws a labelled dashed line across all bars (e.g. the average).
#[component]
pub fn GroupedBarChart(
    groups: Vec<BarGroup>,
    domain: (f64, f64),
    reference: Option<(f64, String)>,
    #[prop(into)] label: String,
) -> impl IntoView {
    let x = Linear { domain, range: (LABEL_WIDTH, CHART_WIDTH - VALUE_LABEL_WIDTH) };
    let bar_count: usize = groups.iter().map(|group| group.bars.len()).sum();
    let height = AXIS_HEIGHT + groups.len() as f64 * GROUP_HEADING_HEIGHT + bar_count as f64 * (BAR_HEIGHT + BAR_GAP);
    let axis = ticks(domain.0, domain.1, 6)
        .into_iter()
        .map(|tick| {
            let at = x.at(tick);
            view! {
                <line class="grid" x1=at x2=at y1=AXIS_HEIGHT - 4.0 y2=height />
                <text class="tick" x=at y=AXIS_HEIGHT - 8.0 text-anchor="middle">{format!("{tick}")}</text>
            }
        })
        .collect_view();
    let mut y = AXIS_HEIGHT;
    let mut rows = Vec::new();
    for (index, group) in groups.into_iter().enumerate() {
        let color = GROUP_COLORS[index % GROUP_COLORS.len()];
        rows.push(view! { <text class="group-label" x=4.0 y=y + 14.0>{group.label}</text> }.into_any());
        y += GROUP_HEADING_HEIGHT;
        for bar in group.bars {
            let top = y;
            let bar_view = bar.value.map(|value| {
                let start = x.at(domain.0.max(0.0_f64.min(domain.1)));
                let end = x.at(value.clamp(domain.0, domain.1));
                view! {
                    <rect class="bar" x=start.min(end) y=top width=(end - start).abs() height=BAR_HEIGHT fill=color>
                        <title>{bar.title.clone()}</title>
                    </rect>
                    <text class="value" x=end + 4.0 y=top + BAR_HEIGHT - 3.0>{format!("{value:.1}")}</text>
                }
            });
            rows.push(
                view! {
                    <g class="bar-row">
                        <text class="bar-label" x=LABEL_WIDTH - 6.0 y=top + BAR_HEIGHT - 3.0 text-anchor="end">
                            {bar.label}
                        </text>
                        {bar_view}
                    </g>
                }
                .into_any(),
            );
            y += BAR_HEIGHT + BAR_GAP;
        }
    }
    let reference = reference.map(|(value, text)| {
        let at = x.at(value.clamp(domain.0, domain.1));
        view! {
            <line class="reference" x1=at x2=at y1=AXIS_HEIGHT y2=height />
            <text class="reference-label" x=at + 4.0 y=AXIS_HEIGHT + 10.0>{text}</text>
        }
    });
    view! {
        <svg class="chart bars" viewBox=format!("0 0 {CHART_WIDTH} {height}") role="img" aria-label=label>
            {axis}
            // Under the bars, so it never hides a value label.
            {reference}
            {rows}
        </svg>
    }
}

/// One cell of a heatmap.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatCell {
    pub row: usize,
    pub column: usize,
    pub fill: String,
    pub title: String,
}

const CELL_SIZE: f64 = 24.0;
const HEAT_LABEL_SPACE: f64 = 40.0;

/// A square heatmap with row and column labels; every cell is a `rect.cell` with a title.
/// `highlighted` outlines one row and column.
#[component]
pub fn Heatmap(
    labels: Vec<String>,
    cells: Vec<HeatCell>,
    highlighted: Option<usize>,
    #[prop(into)] label: String,
) -> impl IntoView {
    let size = HEAT_LABEL_SPACE + labels.len() as f64 * CELL_SIZE;
    let count = labels.len() as f64;
    let label_views = labels
        .into_iter()
        .enumerate()
        .map(|(index, text)| {
            let at = HEAT_LABEL_SPACE + (index as f64 + 0.5) * CELL_SIZE;
            let active = highlighted == Some(index);
            view! {
                <text class="row-label" class:active=active x=HEAT_LABEL_SPACE - 4.0 y=at + 4.0 text-anchor="end">
                    {text.clone()}
                </text>
                <text
                    class="column-label"
                    class:active=active
                    transform=format!("translate({at} {}) rotate(-90)", HEAT_LABEL_SPACE - 4.0)
                    y=4.0
                >
                    {text}
                </text>
            }
        })
        .collect_view();
    let cell_views = cells
        .into_iter()
        .map(|cell| {
            view! {
                <rect
                    class="cell"
                    x=HEAT_LABEL_SPACE + cell.column as f64 * CELL_SIZE
                    y=HEAT_LABEL_SPACE + cell.row as f64 * CELL_SIZE
                    width=CELL_SIZE
                    height=CELL_SIZE
                    fill=cell.fill
                >
                    <title>{cell.title}</title>
                </rect>
            }
        })
        .collect_view();
    let outline = highlighted.map(|index| {
        let at = HEAT_LABEL_SPACE + index as f64 * CELL_SIZE;
        view! {
            <rect class="highlight" x=HEAT_LABEL_SPACE y=at width=count * CELL_SIZE height=CELL_SIZE />
            <rect class="highlight" x=at y=HEAT_LABEL_SPACE width=CELL_SIZE height=count * CELL_SIZE />
        }
    });
    view! {
        <svg class="chart heatmap" viewBox=format!("0 0 {size} {size}") role="img" aria-label=label>
            {label_views}
            {cell_views}
            {outline}
        </svg>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_steps_inside_the_domain() {
        assert_eq!(ticks(0.0, 100.0, 5), [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(ticks(-1.3, 1.3, 4), [-1.0, 0.0, 1.0]);
        assert_eq!(ticks(0.0, 2.0, 4), [0.0, 0.5, 1.0, 1.5, 2.0]);
        assert!(ticks(1.0, 1.0, 5).is_empty() && ticks(0.0, f64::NAN, 5).is_empty());
    }

    #[test]
    fn a_linear_scale_maps_the_domain_ends_to_the_range_ends() {
        let scale = Linear { domain: (0.0, 100.0), range: (300.0, 0.0) };
        assert_eq!((scale.at(0.0), scale.at(25.0), scale.at(100.0)), (300.0, 225.0, 0.0));
        assert_eq!(Linear { domain: (5.0, 5.0), range: (0.0, 10.0) }.at(5.0), 5.0);
    }

    #[test]
    fn colour_scales_run_between_their_stops() {
        assert_eq!(sequential_color(0.0), "#eff6ff");
        assert_eq!(sequential_color(1.0), "#08306b");
        assert_eq!(sequential_color(7.0), "#08306b");
        assert_eq!(diverging_color(-1.0), "#b2182b");
        assert_eq!(diverging_color(0.0), "#f7f7f7");
        assert_eq!(diverging_color(1.0), "#2166ac");
    }
}
