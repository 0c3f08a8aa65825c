//! A table of rows, the same shape on every page: in its scrolling wrapper, with a
//! header row, and the rows as children.

use leptos::prelude::*;

/// A table with a header per entry of `headers`; `last_hidden` adds a last header
/// only screen readers see (an actions column).
#[component]
pub fn Table(
    headers: &'static [&'static str],
    #[prop(optional)] class: Option<&'static str>,
    #[prop(optional)] testid: Option<&'static str>,
    #[prop(optional)] last_hidden: Option<&'static str>,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class=class data-testid=testid>
                <thead><tr>
                    {headers.iter().map(|h| view! { <th scope="col">{*h}</th> }).collect_view()}
                    {last_hidden.map(|h| view! { <th scope="col"><span class="sr-only">{h}</span></th> })}
                </tr></thead>
                <tbody>{children()}</tbody>
            </table>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_renders_its_headers_and_rows() {
        let owner = Owner::new();
        owner.with(|| {
            let html = view! {
                <Table testid="t" headers=&["Who", "When"] last_hidden="Actions">
                    <tr><td>"rita"</td></tr>
                </Table>
            }
            .to_html();
            assert!(
                html.starts_with(r#"<div class="table-wrap"><table data-testid="t""#),
                "{html}"
            );
            assert!(
                html.contains(r#"<th scope="col">Who</th><th scope="col">When</th>"#),
                "{html}"
            );
            assert!(
                html.contains(r#"<th scope="col"><span class="sr-only">Actions</span></th>"#),
                "{html}"
            );
            assert!(
                html.contains("<tbody><tr><td>rita</td></tr></tbody>"),
                "{html}"
            );
            let plain = view! { <Table class="audit" headers=&["#"]><tr/></Table> }.to_html();
            assert!(plain.contains(r#"class="audit""#), "{plain}");
            assert!(!plain.contains("data-testid"), "{plain}");
        });
    }
}
