//! Asking for access: what the policy lets the viewer ask for, and the request
//! form. Fields are checked as they are typed by the same parser the server runs
//! ([`RequestForm::parse`]); before submitting, the form shows the real window the
//! grant would open and warns when the viewer already reaches that access another
//! way.

use crate::api::{
    get_request_options, other_paths, Offer, RequestForm, RequestGrant, RequestOptions,
};
use crate::components::{ErrorNote, When};
use crate::domain::{
    fmt_minutes, FieldError, GrantDuration, PersonId, PortalSession, SessionDuration, WindowInputs,
    Windows,
};
use crate::pages::grant::WindowSentence;
use chrono::{DateTime, NaiveDateTime, Utc};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

/// The account the text names: an id, or a name (case-insensitive).
fn account_of(opts: &RequestOptions, text: &str) -> Option<String> {
    let t = text.trim();
    let id = t.split_whitespace().next().unwrap_or_default();
    opts.accounts
        .iter()
        .find(|a| a.id == id || a.name.eq_ignore_ascii_case(t))
        .map(|a| a.id.clone())
}

/// `datetime-local` text in the viewer's zone → RFC 3339 UTC.
fn local_to_utc(text: &str, offset_minutes: Option<i32>) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M").ok()?;
    Some(naive.and_utc() - chrono::Duration::minutes(i64::from(offset_minutes.unwrap_or(0))))
}

#[component]
pub fn RequestPage() -> impl IntoView {
    let options = Resource::new(|| (), |_| get_request_options());
    view! {
        <Suspense fallback=|| view! { <section><p class="muted">"Loading what you can ask for…"</p></section> }>
            {move || options.get().map(|r| match r {
                Err(e) => view! { <section><h1>"Ask for access"</h1><ErrorNote error=e/></section> }.into_any(),
                Ok(opts) => view! { <RequestView opts=opts/> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn RequestView(opts: RequestOptions) -> impl IntoView {
    let opts = StoredValue::new(opts);
    let offset = use_context::<crate::components::LocalOffset>().map(|o| o.0);
    let viewer = crate::components::use_viewer();
    let me = move || {
        viewer
            .get()
            .and_then(Result::ok)
            .and_then(|v| crate::components::viewer_id(&v))
            .and_then(|id| PersonId::parse(&id).ok())
    };

    // Filled from the query when a step-up sign-in (break-glass needs a recent MFA
    // sign-in) brought the person back here: the form as they had typed it.
    let query = leptos_router::hooks::use_query_map();
    let kept = move |key: &str| query.read_untracked().get(key);
    let account = RwSignal::new(kept("account").unwrap_or_default());
    let permission_set = RwSignal::new(kept("permission_set").unwrap_or_default());
    let duration = RwSignal::new(kept("duration").unwrap_or_else(|| "1h".to_string()));
    let start_later = RwSignal::new(false);
    let start_at = RwSignal::new(String::new());
    let justification = RwSignal::new(kept("justification").unwrap_or_default());
    let ticket = RwSignal::new(kept("ticket").unwrap_or_default());
    let tried = RwSignal::new(false);
    let break_glass = RwSignal::new(kept("break_glass").is_some_and(|v| v == "1"));
    // Where the step-up comes back to: this page with the form's content.
    let back_here = move || {
        let mut path = String::from("/request?");
        let fields = [
            ("account", account.get()),
            ("permission_set", permission_set.get()),
            ("duration", duration.get()),
            ("justification", justification.get()),
            ("ticket", ticket.get()),
        ];
        for (key, value) in fields.iter().filter(|(_, v)| !v.is_empty()) {
            path.push_str(&format!("{key}={}&", crate::components::query_value(value)));
        }
        if break_glass.get() {
            path.push_str("break_glass=1");
        }
        path.trim_end_matches(['&', '?']).to_owned()
    };

    let account_id = Memo::new(move |_| opts.with_value(|o| account_of(o, &account.get())));
    let offers_here = Memo::new(move |_| {
        let id = account_id.get();
        opts.with_value(|o| {
            o.offers
                .iter()
                .filter(|x| Some(&x.account_id) == id.as_ref())
                .cloned()
                .collect::<Vec<Offer>>()
        })
    });
    let offer = Memo::new(move |_| {
        let ps = permission_set.get();
        offers_here
            .get()
            .into_iter()
            .find(|o| o.permission_set == ps)
    });
    let start_utc = move || {
        if start_later.get() {
            local_to_utc(&start_at.get(), offset.and_then(|o| o.get())).map(|t| t.to_rfc3339())
        } else {
            Some(String::new())
        }
    };
    let form = move || RequestForm {
        account_id: account_id.get().unwrap_or_else(|| account.get()),
        permission_set: permission_set.get(),
        duration: duration.get(),
        start_at: start_utc().unwrap_or_else(|| "not a time".into()),
        justification: justification.get(),
        ticket: ticket.get(),
        break_glass: break_glass.get(),
    };
    // Every wrong field at once, by the same rules the server applies on submit.
    let errors = Memo::new(move |_| -> Vec<FieldError> {
        let mut out = Vec::new();
        if me().is_none() {
            out.push(FieldError::new("person", "sign in first"));
        }
        let f = form();
        if account_id.get().is_none() {
            out.push(FieldError::new(
                "account_id",
                "choose an account from the list (by id or name)",
            ));
        } else if offer.get().is_none() {
            out.push(FieldError::new(
                "permission_set",
                if break_glass.get() {
                    "no break-glass policy covers this permission set in this account"
                } else {
                    "choose a permission set you may ask for in this account"
                },
            ));
        }
        for e in f.field_errors(offer.get().as_ref(), Utc::now()) {
            if !out.iter().any(|o| o.field == e.field) {
                out.push(e);
            }
        }
        out
    });
    let check = Memo::new(move |_| errors.with(|e| e.is_empty()));
    let error_for = move |field: &'static str| {
        move || {
            errors.with(|errs| {
                errs.iter()
                    .find(|e| e.field == field)
                    .filter(|_| tried.get() || touched(field, &form()))
                    .map(|e| e.message.clone())
            })
        }
    };
    let invalid = move |field: &'static str| move || error_for(field)().is_some().to_string();

    let preview = Memo::new(move |_| -> Option<Windows> {
        let o = offer.get()?;
        let ps_secs = opts.with_value(|x| {
            x.permission_sets
                .iter()
                .find(|p| p.name == o.permission_set)
                .map(|p| p.session_seconds)
        })?;
        let ps = SessionDuration::from_duration(chrono::Duration::seconds(ps_secs)).ok()?;
        let portal =
            PortalSession::from_seconds(opts.with_value(|x| x.portal_session_seconds)).ok()?;
        let max = GrantDuration::from_minutes(i64::from(o.max_duration_minutes), None).ok();
        let d = GrantDuration::parse(&duration.get(), max).ok()?;
        let start = match start_utc() {
            Some(s) if !s.is_empty() => DateTime::parse_from_rfc3339(&s).ok()?.with_timezone(&Utc),
            Some(_) => Utc::now(),
            None => return None,
        };
        Windows::compute(&WindowInputs {
            activated_at: start,
            revoked_at: None,
            planned_end: start + d.as_duration(),
            portal_session: portal,
            permission_set_session: ps,
            observed: None,
            sessions_closed_at: None,
        })
        .ok()
    });

    // Other paths to the same access, asked once the account and permission set are chosen.
    let paths = Resource::new(
        move || (account_id.get(), offer.get().map(|o| o.permission_set)),
        |(a, p)| async move {
            match (a, p) {
                (Some(a), Some(p)) => other_paths(a, p).await.ok(),
                _ => None,
            }
        },
    );

    let submit = ServerAction::<RequestGrant>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(g)) = submit.value().get() {
            navigate(&format!("/grants/{}", g.id), Default::default());
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        tried.set(true);
        if check.get_untracked() {
            submit.dispatch(RequestGrant { form: form() });
        }
    };
    let choose = move |o: Offer| {
        account.set(o.account_id.clone());
        permission_set.set(o.permission_set.clone());
        if let Some(el) = document().get_element_by_id("request-form") {
            el.scroll_into_view();
        }
    };

    view! {
        <section aria-labelledby="offers-title">
            <h1 id="offers-title">"What you can ask for"</h1>
            {opts.with_value(|o| o.catalog_synced_at).map_or_else(
                || view! { <p class="warning">"The catalog has not been synced from Identity Center yet; ask an admin."</p> }.into_any(),
                |t| view! { <p class="hint">"Accounts and permission sets as synced from IAM Identity Center at " <When at=t/> "."</p> }.into_any(),
            )}
            {opts.with_value(|o| o.offers.is_empty()).then(|| view! {
                <p class="empty" data-testid="no-offers">"No policy lets you ask for anything yet. Ask an admin which policy covers your team."</p>
            })}
            <div class="table-wrap">
                <table class="offers" data-testid="offers">
                    <thead><tr>
                        <th scope="col">"Account"</th><th scope="col">"Permission set"</th>
                        <th scope="col">"Up to"</th><th scope="col">"Approval"</th><th scope="col">"Ticket"</th>
                        <th scope="col"><span class="sr-only">"Choose"</span></th>
                    </tr></thead>
                    <tbody>
                        {opts.with_value(|o| o.offers.clone()).into_iter().map(|o| {
                            let chosen = o.clone();
                            let approval = if o.break_glass {
                                "break-glass: immediate, everyone notified, reviewed afterwards".to_owned()
                            } else if o.approvals_required == 0 {
                                "automatic".to_owned()
                            } else {
                                format!("{} from {}", o.approvals_required, if o.approvers.is_empty() { "approvers".to_owned() } else { o.approvers.join(", ") })
                            };
                            view! {
                                <tr>
                                    <td>{o.account_name.clone()} <span class="muted">" " {o.account_id.clone()}</span></td>
                                    <td>{o.permission_set.clone()}</td>
                                    <td>{fmt_minutes(i64::from(o.max_duration_minutes))}</td>
                                    <td>{approval}</td>
                                    <td>{if o.ticket_required { "required" } else { "optional" }}</td>
                                    <td><button type="button" on:click=move |_| choose(chosen.clone())>"Ask"</button></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>

        <section aria-labelledby="form-title">
            <h2 id="form-title">"Request"</h2>
            <form id="request-form" class="request-form" on:submit=on_submit novalidate>
                <div class="field">
                    <label for="account">"Account (id or name)"</label>
                    <input id="account" name="account" list="account-list" autocomplete="off" required
                        prop:value=account aria-invalid=invalid("account_id") aria-describedby="account-error"
                        on:input=move |ev| account.set(event_target_value(&ev))/>
                    <datalist id="account-list">
                        {opts.with_value(|o| o.accounts.clone()).into_iter().map(|a| view! {
                            <option value=a.id.clone()>{format!("{} — {}", a.name, a.path)}</option>
                        }).collect_view()}
                    </datalist>
                    <p class="error" id="account-error" role="alert">{error_for("account_id")}</p>
                </div>
                <div class="field">
                    <label for="permission_set">"Permission set"</label>
                    <select id="permission_set" name="permission_set" required
                        aria-invalid=invalid("permission_set") aria-describedby="ps-error"
                        prop:value=permission_set
                        on:change=move |ev| permission_set.set(event_target_value(&ev))>
                        <option value="">"— choose —"</option>
                        {move || {
                            let mut names: Vec<String> = offers_here.get().into_iter().map(|o| o.permission_set).collect();
                            names.dedup();
                            names.into_iter().map(|name| {
                                let selected = name == permission_set.get_untracked();
                                view! { <option value=name.clone() selected=selected>{name.clone()}</option> }
                            }).collect_view()
                        }}
                    </select>
                    <p class="error" id="ps-error" role="alert">{error_for("permission_set")}</p>
                </div>
                {move || {
                    let ps = permission_set.get();
                    offers_here.get().iter().any(|o| o.permission_set == ps && o.break_glass).then(|| view! {
                        <div class="field wide warning">
                            <label>
                                <input type="checkbox" name="break_glass" prop:checked=break_glass
                                    on:change=move |ev| break_glass.set(event_target_checked(&ev))/>
                                " Break-glass: no approval, starts at once; every approver and auditor is told, and the grant must be reviewed afterwards."
                            </label>
                        </div>
                    })
                }}
                <div class="field">
                    <label for="duration">"For how long"</label>
                    <input id="duration" name="duration" type="text" required placeholder="1h, 90m, 1h30m"
                        prop:value=duration aria-invalid=invalid("duration") aria-describedby="duration-error duration-hint"
                        on:input=move |ev| duration.set(event_target_value(&ev))/>
                    <p class="hint" id="duration-hint">{move || offer.get().map(|o| format!("at most {}", fmt_minutes(i64::from(o.max_duration_minutes))))}</p>
                    <p class="error" id="duration-error" role="alert">{error_for("duration")}</p>
                </div>
                <fieldset class="field">
                    <legend>"Start"</legend>
                    <label><input type="radio" name="start" value="now" prop:checked=move || !start_later.get()
                        on:change=move |_| start_later.set(false)/>" as soon as approved"</label>
                    <label><input type="radio" name="start" value="later" prop:checked=start_later
                        on:change=move |_| start_later.set(true)/>" at "</label>
                    <input id="start_at" name="start_at" type="datetime-local" aria-label="Start at (your time)"
                        prop:disabled=move || !start_later.get()
                        aria-invalid=invalid("start_at") aria-describedby="start-error"
                        on:input=move |ev| start_at.set(event_target_value(&ev))/>
                    <p class="error" id="start-error" role="alert">{error_for("start_at")}</p>
                </fieldset>
                <div class="field wide">
                    <label for="justification">"Why do you need it?"</label>
                    <textarea id="justification" name="justification" rows="3" required
                        prop:value=justification aria-invalid=invalid("justification") aria-describedby="justification-error"
                        on:input=move |ev| justification.set(event_target_value(&ev))></textarea>
                    <p class="error" id="justification-error" role="alert">{error_for("justification")}</p>
                </div>
                <div class="field">
                    <label for="ticket">{move || if offer.get().is_some_and(|o| o.ticket_required) { "Ticket (required)" } else { "Ticket (optional)" }}</label>
                    <input id="ticket" name="ticket" type="text" placeholder="INC-1234"
                        prop:value=ticket aria-invalid=invalid("ticket") aria-describedby="ticket-error"
                        on:input=move |ev| ticket.set(event_target_value(&ev))/>
                    <p class="error" id="ticket-error" role="alert">{error_for("ticket")}</p>
                </div>

                <div class="preview-result wide" aria-live="polite" data-testid="request-preview">
                    {move || preview.get().map(|w| view! { <WindowSentence windows=w preview=false/> })}
                    {move || {
                        let management = opts.with_value(|x| x.management_account.clone());
                        (account_id.get().is_some() && account_id.get() == management).then(|| view! {
                            <p class="warning" role="note" data-testid="management-account-note">
                                "This is the organisation's management account: service control policies do not govern it, so Timebox cannot close the sessions this grant gives out when it ends. They can last until the real window above ends."
                            </p>
                        })
                    }}
                    <Suspense fallback=|| ()>
                        {move || paths.get().flatten().filter(|p| !p.is_empty()).map(|p| view! {
                            <p class="warning" role="note" data-testid="other-paths-warning">
                                "You already reach this permission set in this account another way ("
                                {p.iter().map(|x| format!("{} {}", x.principal_type.to_lowercase(), x.principal)).collect::<Vec<_>>().join(", ")}
                                "): this grant will not bound your access."
                            </p>
                        })}
                    </Suspense>
                </div>
                <div class="buttons wide">
                    <button type="submit" class="primary" data-testid="submit-request"
                        prop:disabled=move || submit.pending().get()>
                        {move || if submit.pending().get() { "Sending…" } else { "Ask for access" }}
                    </button>
                </div>
                {move || submit.value().get().and_then(Result::err).map(|e| view! { <ErrorNote error=e return_to=Some(back_here())/> })}
            </form>
        </section>
    }
}

/// Whether the person has typed into `field` (errors show from then on).
fn touched(field: &str, f: &RequestForm) -> bool {
    match field {
        "account_id" => !f.account_id.is_empty(),
        "permission_set" => !f.permission_set.is_empty(),
        "duration" => !f.duration.is_empty(),
        "justification" => !f.justification.is_empty(),
        "ticket" => !f.ticket.is_empty(),
        "start_at" => !f.start_at.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AccountChoice;

    #[test]
    fn accounts_are_found_by_id_or_name() {
        let opts = RequestOptions {
            accounts: vec![AccountChoice {
                id: "111122223333".into(),
                name: "Payments-Prod".into(),
                path: "Root / Prod".into(),
            }],
            ..RequestOptions::default()
        };
        assert_eq!(
            account_of(&opts, "111122223333").as_deref(),
            Some("111122223333")
        );
        assert_eq!(
            account_of(&opts, "payments-prod").as_deref(),
            Some("111122223333")
        );
        assert_eq!(account_of(&opts, "nope"), None);
    }

    #[test]
    fn local_start_becomes_utc() {
        let t = local_to_utc("2026-11-28T15:00", Some(60)).expect("parses");
        assert_eq!(t.to_rfc3339(), "2026-11-28T14:00:00+00:00");
        assert!(local_to_utc("tomorrow", None).is_none());
    }
}
