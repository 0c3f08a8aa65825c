//! The audit chain's latest signed checkpoint, where it was published and the public
//! key that verifies it, or that the chain is not signed: shown on the Audit page
//! and the admin page alike.

use super::When;
use crate::api::AuditStatus;
use leptos::prelude::*;

#[component]
pub fn CheckpointNote(audit: AuditStatus) -> impl IntoView {
    match (audit.signing, audit.latest) {
        (_, Some(c)) => {
            let sinks = if c.published.is_empty() {
                "no sink yet".to_owned()
            } else {
                c.published
                    .iter()
                    .map(|(s, _)| s.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            view! {
                <div class="ok-note" data-testid="audit-checkpoint">
                    <p>
                        {format!("Latest signed checkpoint: event {} (chain hash {}…, {} events) at ", c.seq, c.hash.chars().take(16).collect::<String>(), c.events)}
                        <When at=c.at/>
                        {format!("; published to {sinks}.")}
                    </p>
                    <p>"Verify the whole log offline with the public key "
                        <code data-testid="audit-public-key">{c.public_key}</code> ": "
                        <code>"timebox audit verify --database URL --checkpoints FILE --public-key FILE"</code></p>
                </div>
            }
            .into_any()
        }
        (true, None) => view! {
            <p class="muted">"Checkpoints are signed here; none is written yet (one follows the first events)."</p>
        }
        .into_any(),
        (false, None) => view! {
            <p class="warning" role="note">"The audit chain is not signed on this server (audit.signing_key_file is not set): it is only as safe as the database. See docs/audit.md."</p>
        }
        .into_any(),
    }
}
