//! A grant's action forms, the same wherever they are shown (the grant page, the
//! inbox, "My grants"); the page decides which to show by the domain rule.

use crate::api::{CancelGrant, DecideGrant, RevokeGrant};
use crate::domain::{Comment, GrantId};
use leptos::form::ActionForm;
use leptos::prelude::*;

/// Approve or deny grant `id`, with an optional comment whose input has the id
/// `comment_id`, filled with `comment` (what the person typed before a step-up
/// sign-in).
#[component]
pub fn DecideForm(
    id: GrantId,
    decide: ServerAction<DecideGrant>,
    comment_id: String,
    #[prop(default = None)] comment: Option<String>,
) -> impl IntoView {
    view! {
        <ActionForm action=decide attr:class="decide" attr:data-testid="decide-form">
            <input type="hidden" name="id" value=id.to_string()/>
            <div class="field">
                <label for=comment_id.clone()>"Comment (optional)"</label>
                <input id=comment_id name="comment" type="text" maxlength=Comment::MAX_CHARS value=comment/>
            </div>
            <div class="buttons">
                <button type="submit" name="decision" value="approve" class="primary" data-testid="approve">"Approve"</button>
                <button type="submit" name="decision" value="deny" data-testid="deny">"Deny"</button>
            </div>
        </ActionForm>
    }
}

/// Withdraw request `id`, with a button saying `label`.
#[component]
pub fn CancelForm(
    id: GrantId,
    cancel: ServerAction<CancelGrant>,
    label: &'static str,
) -> impl IntoView {
    view! {
        <ActionForm action=cancel attr:class="inline">
            <input type="hidden" name="id" value=id.to_string()/>
            <button type="submit" data-testid="cancel">{label}</button>
        </ActionForm>
    }
}

/// "I'm done": end one's own grant `id` now, with a button saying `label`.
#[component]
pub fn DoneForm(
    id: GrantId,
    revoke: ServerAction<RevokeGrant>,
    label: &'static str,
) -> impl IntoView {
    view! {
        <ActionForm action=revoke attr:class="inline">
            <input type="hidden" name="id" value=id.to_string()/>
            <input type="hidden" name="reason" value="the requester is done"/>
            <button type="submit" data-testid="done">{label}</button>
        </ActionForm>
    }
}
