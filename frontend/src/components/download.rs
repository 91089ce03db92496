//! Every table can be downloaded as CSV and as JSON (an array of objects, one per row), from the
//! data the page already holds: the links carry the file as a data URL.

use leptos::prelude::*;

use super::encode_uri_component;

/// One value of a downloadable table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// `None` is an empty CSV field and JSON `null`.
    Number(Option<f64>),
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Cell {
        Cell::Text(text.into())
    }
}

/// A table as it is downloaded: a file name (without extension), column names and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct DataTable {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// A CSV field, quoted when it holds a separator, a quote or a line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

impl DataTable {
    pub fn new(name: impl Into<String>, columns: &[&str]) -> DataTable {
        DataTable {
            name: name.into(),
            columns: columns.iter().map(|column| column.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn csv(&self) -> String {
        let mut lines = vec![self.columns.iter().map(|column| csv_field(column)).collect::<Vec<_>>().join(",")];
        for row in &self.rows {
            let fields: Vec<String> = row
                .iter()
                .map(|cell| match cell {
                    Cell::Text(text) => csv_field(text),
                    Cell::Number(value) => value.map(|value| value.to_string()).unwrap_or_default(),
                })
                .collect();
            lines.push(fields.join(","));
        }
        lines.join("\r\n") + "\r\n"
    }

    pub fn json(&self) -> String {
        use leptos::serde_json::{Map, Number, Value};
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                let object: Map<String, Value> = self
                    .columns
                    .iter()
                    .zip(row)
                    .map(|(column, cell)| {
                        let value = match cell {
                            Cell::Text(text) => Value::String(text.clone()),
                            Cell::Number(value) => value.and_then(Number::from_f64).map_or(Value::Null, Value::Number),
                        };
                        (column.clone(), value)
                    })
                    .collect();
                Value::Object(object)
            })
            .collect();
        leptos::serde_json::to_string_pretty(&rows).unwrap_or_default()
    }
}

fn data_url(media_type: &str, payload: &str) -> String {
    format!("data:{media_type};charset=utf-8,{}", encode_uri_component(payload))
}

/// "Download CSV · JSON" links for a table.
#[component]
pub fn Download(table: DataTable) -> impl IntoView {
    let csv_href = data_url("text/csv", &table.csv());
    let json_href = data_url("application/json", &table.json());
    view! {
        <span class="download" data-table=table.name.clone()>
            "Download "
            <a class="csv" download=format!("{}.csv", table.name) href=csv_href>"CSV"</a>
            " · "
            <a class="json" download=format!("{}.json", table.name) href=json_href>"JSON"</a>
        </span>
    }
}

/// A downloadable table drawn as it is (numbers with 2 decimals, a dash for none), for tables
/// that need no formatting of their own.
#[component]
pub fn DataTableView(table: DataTable, class: &'static str) -> impl IntoView {
    let headings = table.columns.iter().map(|column| view! { <th>{column.replace('_', " ")}</th> }).collect_view();
    let rows = table
        .rows
        .iter()
        .map(|row| {
            let cells = row
                .iter()
                .map(|cell| match cell {
                    Cell::Text(text) => view! { <td>{text.clone()}</td> }.into_any(),
                    Cell::Number(value) => view! { <td class="num">{super::format_number(*value, 2)}</td> }.into_any(),
                })
                .collect_view();
            view! { <tr>{cells}</tr> }
        })
        .collect_view();
    view! {
        <div class="table-scroll">
            <table class=class>
                <thead><tr>{headings}</tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_rfc_4180_asks_and_json_keeps_numbers() {
        let mut table = DataTable::new("scores", &["culture", "score"]);
        table.rows.push(vec![Cell::text("Bolivia, \"BOL\""), Cell::Number(Some(61.5))]);
        table.rows.push(vec![Cell::text("two\nlines"), Cell::Number(None)]);
        assert_eq!(table.csv(), "culture,score\r\n\"Bolivia, \"\"BOL\"\"\",61.5\r\n\"two\nlines\",\r\n");
        let rows: Vec<leptos::serde_json::Value> = leptos::serde_json::from_str(&table.json()).unwrap();
        assert_eq!(rows[0]["score"], 61.5);
        assert_eq!(rows[1]["score"], leptos::serde_json::Value::Null);
        assert_eq!(rows[1]["culture"], "two\nlines");
    }

    #[test]
    fn a_data_url_carries_the_payload_percent_encoded() {
        assert_eq!(data_url("text/csv", "a,b\r\n"), "data:text/csv;charset=utf-8,a%2Cb%0D%0A");
    }
}
