//! The approve / deny form, the same on the grant page and in the inbox.

use crate::api::DecideGrant;
use crate::domain::{Comment, GrantId};
use leptos::form::ActionForm;
use leptos::prelude::*;

/// Approve or deny grant `id`, with an optional comment whose input has the id
/// `comment_id`.
#[component]
pub fn DecideForm(
    id: GrantId,
    decide: ServerAction<DecideGrant>,
    comment_id: String,
) -> impl IntoView {
    view! {
        <ActionForm action=decide attr:class="decide" attr:data-testid="decide-form">
            <input type="hidden" name="id" value=id.to_string()/>
            <div class="field">
                <label for=comment_id.clone()>"Comment (optional)"</label>
                <input id=comment_id name="comment" type="text" maxlength=Comment::MAX_CHARS/>
            </div>
            <div class="buttons">
                <button type="submit" name="decision" value="approve" class="primary" data-testid="approve">"Approve"</button>
                <button type="submit" name="decision" value="deny" data-testid="deny">"Deny"</button>
            </div>
        </ActionForm>
    }
}
