//! One grant: what was asked and why, its three windows in words and as a
//! timeline, the approvals and the quorum, the actions the viewer may take now,
//! other paths to the same access, the evidence, and the audit trail with its
//! hash-chain check. Readable without JavaScript.

use crate::api::{
    get_grant_detail, CancelGrant, DecideGrant, ExtendGrant, GrantDetail, ReviewGrant, RevokeGrant,
};
use crate::components::{
    kept_decision, person_label, use_refresh, ActivityMarks, CancelForm, DecideForm, DoneForm,
    ErrorNote, MaybeWhen, StateBadge, Table, Timeline, When,
};
use crate::domain::{
    fmt_minutes, format_human, AccessChain, EvidenceSummary, Grant, GrantId, GrantWindows,
    PortalSession, Reason, ReviewComment, SessionDuration, WindowInputs, Windows,
};
use chrono::Utc;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

/// The windows of `g` ([`Grant::windows_or_preview`]) with the sessions the page was
/// given in seconds.
pub fn windows_of(g: &Grant, portal_seconds: i64, ps_seconds: Option<i64>) -> Option<GrantWindows> {
    g.windows_or_preview(
        Utc::now(),
        PortalSession::from_seconds(portal_seconds).ok(),
        ps_seconds.and_then(|s| SessionDuration::from_duration(chrono::Duration::seconds(s)).ok()),
    )
}

/// The windows again with what the evidence observed, so the observed window and
/// the evidence bound (last credential issuance + session) are shown.
fn narrowed(g: &Grant, w: Windows, evidence: Option<&EvidenceSummary>) -> Windows {
    let Some(observed) = evidence.and_then(EvidenceSummary::observed) else {
        return w;
    };
    let Some(activated_at) = g.activated_at else {
        return w;
    };
    Windows::compute(&WindowInputs {
        activated_at,
        revoked_at: g.revoked_at,
        planned_end: g.ends_at.unwrap_or(w.granted.end),
        portal_session: w.portal_session,
        permission_set_session: w.permission_set_session,
        observed: Some(observed),
        sessions_closed_at: g.sessions_closed_at,
    })
    .unwrap_or(w)
}

/// "Access until …; sessions opened before then can last until … because …", or
/// once the deny closed them, "sessions closed at …; without it … ".
#[component]
pub fn WindowSentence(windows: Windows, preview: bool) -> impl IntoView {
    let w = windows;
    let until = if w.is_final {
        "Access ended"
    } else {
        "Access until"
    };
    if let Some(closed) = w.sessions_closed_at {
        return view! {
            <p class="window-sentence" data-testid="window-sentence">
                {until} " " <strong><When at=w.granted.end/></strong>
                "; its sessions were closed at "
                <strong data-testid="sessions-closed-at"><When at=closed/></strong>
                ", so the real window ended at "
                <strong data-testid="real-end"><When at=w.real.end/></strong>
                ". Without the deny they could have lasted until "
                <span data-testid="worst-case-end"><When at=w.worst_case_end/></span>
                " (portal session " {format_human(w.portal_session.as_duration())}
                " + this permission set's session " {format_human(w.permission_set_session.as_duration())} ")."
            </p>
        }
        .into_any();
    }
    view! {
        <p class="window-sentence" data-testid="window-sentence">
            {if preview { "If approved now: " } else { "" }}
            {until} " " <strong><When at=w.granted.end/></strong>
            "; sessions opened before then can last until "
            <strong data-testid="real-end"><When at=w.real.end/></strong>
            " because the portal session is " {format_human(w.portal_session.as_duration())}
            " and this permission set's session is " {format_human(w.permission_set_session.as_duration())} "."
            {w.evidence_bound.map(|b| view! {
                " CloudTrail narrows it: the last credentials were issued in time to last until "
                <When at=b/> "."
            })}
        </p>
    }
    .into_any()
}

/// `text` with its first letter capitalised, to start a sentence.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// What became of a revoked grant's sessions, or, for a grant in the management
/// account, that they cannot be closed.
#[component]
pub fn SessionsNote(grant: Grant, management_account: bool) -> impl IntoView {
    match grant.sessions_close {
        Some(c) if c.is_closed() => view! {
            <p class="ok-note" data-testid="sessions-close" data-outcome=c.as_str()>{sentence(c.describe())} "."</p>
        }
        .into_any(),
        Some(crate::domain::SessionsClose::Pending) => view! {
            <p class="muted" data-testid="sessions-close" data-outcome="pending">{sentence(crate::domain::SessionsClose::Pending.describe())} "…"</p>
        }
        .into_any(),
        Some(c) => view! {
            <p class="warning" role="note" data-testid="sessions-close" data-outcome=c.as_str()>
                {sentence(c.describe())} "; the worst case stands."
            </p>
        }
        .into_any(),
        None if management_account && grant.revoked_at.is_none() => view! {
            <p class="warning" role="note" data-testid="sessions-close" data-outcome="management_account">
                "This grant is in the organisation's management account: service control policies do not govern it, so its sessions cannot be closed by one when it ends."
            </p>
        }
        .into_any(),
        None => ().into_any(),
    }
}

#[component]
pub fn GrantPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let refresh = use_refresh();
    let decide = ServerAction::<DecideGrant>::new();
    let cancel = ServerAction::<CancelGrant>::new();
    let revoke = ServerAction::<RevokeGrant>::new();
    let extend = ServerAction::<ExtendGrant>::new();
    let detail = Resource::new(
        move || {
            (
                id(),
                refresh.get(),
                decide.version().get()
                    + cancel.version().get()
                    + revoke.version().get()
                    + extend.version().get(),
            )
        },
        |(id, _, _)| get_grant_detail(id),
    );
    let kept = kept_decision(decide, Some(revoke));
    let action_error = move || {
        [
            decide.value().get(),
            cancel.value().get(),
            revoke.value().get(),
            extend.value().get(),
        ]
        .into_iter()
        .flatten()
        .find_map(Result::err)
        .map(|e| view! { <ErrorNote error=e return_to=kept.get()/> })
    };
    let extended = move || {
        extend.value().get().and_then(Result::ok).map(|g| {
            view! {
                <p class="ok-note" role="status">
                    "Extension requested: " <a href=format!("/grants/{}", g.id)>"see the new request"</a>
                    ". It overlaps this grant, so your access is never cut short."
                </p>
            }
        })
    };
    view! {
        <Transition fallback=|| view! { <section><p class="muted">"Loading the grant…"</p></section> }>
            {move || detail.get().map(|r| match r {
                Err(e) => view! { <section><h1>"Grant"</h1><ErrorNote error=e/></section> }.into_any(),
                Ok(d) => view! {
                    {action_error}
                    {extended}
                    <GrantView d=d decide=decide cancel=cancel revoke=revoke extend=extend/>
                }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn GrantView(
    d: GrantDetail,
    decide: ServerAction<DecideGrant>,
    cancel: ServerAction<CancelGrant>,
    revoke: ServerAction<RevokeGrant>,
    extend: ServerAction<ExtendGrant>,
) -> impl IntoView {
    let g = d.grant.clone();
    let id = g.id;
    let review = ServerAction::<ReviewGrant>::new();
    let refresh = use_refresh();
    // What the person typed before a step-up sign-in brought them back here.
    let query = use_query_map();
    let kept_comment = query.read_untracked().get("comment");
    let kept_reason = query.read_untracked().get("reason");
    Effect::new(move |_| {
        if review.version().get() > 0 {
            refresh.update(|n| *n += 1);
        }
    });
    let shown = windows_of(
        &g,
        d.portal_session_seconds,
        d.permission_set_session_seconds,
    );
    let preview = shown.is_some_and(|w| w.preview);
    let windows = shown.map(|w| narrowed(&g, w.windows, d.evidence.as_ref()));
    let closed_windows = windows.filter(|w| w.sessions_closed_at.is_some());
    let activity = ActivityMarks {
        first: d.evidence.as_ref().and_then(|e| e.first_activity),
        last: d.evidence.as_ref().and_then(|e| e.last_activity),
        events: d.events.iter().map(|e| e.event_time).collect(),
    };
    let now = Utc::now();
    let linked: Vec<_> = d
        .access
        .iter()
        .flat_map(|c| c.links.iter())
        .filter(|l| l.id != id)
        .filter_map(|l| Some((l.activated_at?, l.ends_at?)))
        .collect();
    let approvals_have = d
        .approvals
        .iter()
        .filter(|a| a.decision == "approve")
        .count();
    let quorum = format!(
        "{approvals_have} of {} approval{} ",
        g.request.approvals_required,
        if g.request.approvals_required == 1 {
            ""
        } else {
            "s"
        }
    );
    let other_paths = (!d.other_paths.is_empty()).then(|| {
        let list = d
            .other_paths
            .iter()
            .map(|p| view! { <li>{p.describe()}</li> })
            .collect_view();
        view! {
            <div class="warning" role="note" data-testid="other-paths">
                <strong>"This grant does not bound this person's access: "</strong>
                "they also reach this permission set in this account through:"
                <ul>{list}</ul>
            </div>
        }
    });
    view! {
        <section aria-labelledby="grant-title" data-testid="grant" data-state=g.state.as_str()>
            <h1 id="grant-title">
                {g.request.permission_set.to_string()} " in "
                {crate::components::account_label(d.account_name.as_deref(), g.request.account_id.as_str())} " "
                <StateBadge state=g.state/>
            </h1>
            <dl class="facts">
                <dt>"Requester"</dt><dd data-testid="requester">{person_label(&d.names, g.request.requester.as_str())}</dd>
                <dt>"Duration"</dt><dd>{fmt_minutes(g.request.duration.minutes())}</dd>
                <dt>"Requested"</dt><dd><When at=g.created_at/></dd>
                <dt>"Start"</dt><dd>{match g.request.requested_start {
                    Some(t) => view! { <When at=t/> }.into_any(),
                    None => view! { "as soon as approved" }.into_any(),
                }}</dd>
                <dt>"Justification"</dt><dd class="justification">{g.request.justification.to_string()}</dd>
                <dt>"Ticket"</dt><dd>{g.request.ticket.as_ref().map_or("—".to_owned(), |t| t.to_string())}</dd>
                <dt>"Activated"</dt><dd><MaybeWhen at=g.activated_at/></dd>
                <dt>"Revoked"</dt><dd><MaybeWhen at=g.revoked_at/></dd>
                {g.failure_reason.clone().map(|r| view! { <dt>"Failure"</dt><dd class="error">{r}</dd> })}
            </dl>
            {windows.map(|w| view! { <WindowSentence windows=w preview=preview/> })}
            <SessionsNote grant=g.clone() management_account=d.management_account/>
            {other_paths}
            {d.access.clone().map(|c| view! { <AccessChainView chain=c current=id/> })}
            <Timeline grant=g.clone() approvals=d.approvals.clone() windows=windows activity=activity linked=linked now=now/>
        </section>

        <section aria-labelledby="approvals-title">
            <h2 id="approvals-title">"Approvals"</h2>
            <p data-testid="quorum">{quorum} "(distinct people; never the requester)"</p>
            {if d.approvals.is_empty() {
                view! { <p class="muted">"No decision yet."</p> }.into_any()
            } else {
                view! {
                    <ul class="approvals">
                        {d.approvals.iter().map(|a| view! {
                            <li>
                                <strong>{person_label(&d.names, &a.approver)}</strong> " " {if a.decision == "approve" { "approved" } else { "denied" }} " "
                                <When at=a.decided_at/>
                                {a.comment.clone().map(|c| view! { ": " <q>{c}</q> })}
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            {d.actions.can_decide.then(|| view! { <DecideForm id=id decide=decide comment_id="comment".to_owned() comment=kept_comment.clone()/> })}
        </section>

        {g.break_glass.then(|| view! {
            <section aria-labelledby="bg-title" data-testid="break-glass">
                <h2 id="bg-title">"Break-glass"</h2>
                {match (g.reviewed_by.clone(), g.reviewed_at) {
                    (Some(who), Some(at)) => view! {
                        <p class="ok-note">"Reviewed by " <strong>{who}</strong> " " <When at=at/>
                            {g.review_comment.clone().map(|c| view! { ": " <q>{c}</q> })}</p>
                    }.into_any(),
                    _ => view! { <p class="warning">"Used without approval: a review is owed."</p> }.into_any(),
                }}
                {d.actions.can_review.then(|| view! {
                    <ActionForm action=review attr:class="decide">
                        <input type="hidden" name="id" value=id.to_string()/>
                        <div class="field">
                            <label for="review-comment">"Review"</label>
                            <input id="review-comment" name="comment" type="text" required maxlength=ReviewComment::MAX_CHARS/>
                        </div>
                        <button type="submit" data-testid="review">"Record the review"</button>
                    </ActionForm>
                })}
            </section>
        })}

        {(d.actions.can_cancel || d.actions.can_revoke || d.actions.can_finish || d.actions.can_extend).then(|| view! {
            <section aria-labelledby="actions-title">
                <h2 id="actions-title">"Actions"</h2>
                {d.actions.can_cancel.then(|| view! { <CancelForm id=id cancel=cancel label="Cancel this request"/> })}
                {d.actions.can_finish.then(|| view! { <DoneForm id=id revoke=revoke label="I'm done: revoke now"/> })}
                {d.actions.can_revoke.then(|| view! {
                    <ActionForm action=revoke attr:class="inline">
                        <input type="hidden" name="id" value=id.to_string()/>
                        <label for="revoke-reason">"Reason"</label>
                        <input id="revoke-reason" name="reason" type="text" required maxlength=Reason::MAX_CHARS value=kept_reason.clone()/>
                        <button type="submit" class="danger" data-testid="revoke">"Revoke now"</button>
                    </ActionForm>
                })}
                {d.actions.can_extend.then(|| view! {
                    <ActionForm action=extend attr:class="extend" attr:id="extend">
                        <h3>"Ask for more time"</h3>
                        <input type="hidden" name="id" value=id.to_string()/>
                        <div class="field">
                            <label for="extend-duration">"Extra time"</label>
                            <input id="extend-duration" name="duration" type="text" required placeholder="1h, 30m"/>
                        </div>
                        <div class="field">
                            <label for="extend-why">"Why"</label>
                            <input id="extend-why" name="justification" type="text" required minlength="10"/>
                        </div>
                        <div class="field">
                            <label for="extend-ticket">"Ticket"</label>
                            <input id="extend-ticket" name="ticket" type="text"/>
                        </div>
                        <button type="submit">"Request the extension"</button>
                    </ActionForm>
                })}
            </section>
        })}

        <section aria-labelledby="evidence-title" data-testid="evidence">
            <h2 id="evidence-title">"Evidence"</h2>
            {match d.evidence.clone() {
                None => view! {
                    <p class="muted">"No activity has been collected for this grant yet (it is collected while the grant is active, when its real window closes, and once more after CloudTrail's delivery delay)."</p>
                }.into_any(),
                Some(e) => view! {
                    <p data-testid="activity-summary">
                        {format!("{} CloudTrail event{} ({} errors, {} access denied) from {} source IP{}",
                            e.event_count, if e.event_count == 1 { "" } else { "s" },
                            e.error_count, e.access_denied_count,
                            e.distinct_source_ips, if e.distinct_source_ips == 1 { "" } else { "s" })}
                        {e.first_activity.zip(e.last_activity).map(|(f, l)| view! {
                            "; observed from " <When at=f/> " to " <When at=l/>
                        })}
                        "."
                        {(!e.covers_tail).then_some(" Collection is not final yet: later activity may still arrive.")}
                    </p>
                    {(e.refused_after_close > 0).then(|| view! {
                        <p class="ok-note" data-testid="refused-after-close">
                            {format!("{} call{} refused after the sessions were closed: the deny works.",
                                e.refused_after_close, if e.refused_after_close == 1 { "" } else { "s" })}
                        </p>
                    })}
                    {(!e.flags.is_empty()).then(|| view! {
                        <ul class="flags" data-testid="flags">
                            {e.flags.iter().map(|f| view! {
                                <li class="warning" data-flag=f.title()><strong>{f.title()}</strong>": " {f.describe()}</li>
                            }).collect_view()}
                        </ul>
                    })}
                    {(!e.source_ips.is_empty()).then(|| view! {
                        <p class="muted">"Source IPs: " {e.source_ips.join(", ")}</p>
                    })}
                }.into_any(),
            }}
            {d.investigation.clone().map(|i| view! {
                <div class="investigation" data-testid="investigation">
                    <h3>"Amazon Detective investigation"</h3>
                    <p>
                        "Severity " <strong data-testid="severity">{i.severity.map_or("not yet known", |s| s.as_str())}</strong>
                        ", status " {i.status.as_str()} ", over " <When at=i.scope.start/> " – " <When at=i.scope.end/> "."
                    </p>
                    <p class="warning" role="note">{i.shared_role_note.clone()}</p>
                    {(!i.indicators.is_empty()).then(|| view! {
                        <ul class="indicators">
                            {i.indicators.iter().map(|x| view! { <li><strong>{x.title().to_owned()}</strong>": " {x.summary.clone()}</li> }).collect_view()}
                        </ul>
                    })}
                    <p>
                        <a href=i.links.investigation.clone() rel="external noopener" target="_blank">"Open the investigation in Detective"</a>
                        {i.links.role_session.clone().map(|l| view! { " · " <a href=l rel="external noopener" target="_blank">"This person's role session"</a> })}
                        {i.links.role.clone().map(|l| view! { " · " <a href=l rel="external noopener" target="_blank">"The role (everyone)"</a> })}
                    </p>
                </div>
            })}
            {(!d.events.is_empty()).then(|| view! {
                <details>
                    <summary>{format!("Events ({} shown)", d.events.len())}</summary>
                    <Table class="events" headers=&["When", "Event", "Region", "Source IP", "Error"]>
                                {d.events.iter().map(|e| {
                                    let after_close = closed_windows.is_some_and(|w| w.is_after_sessions_closed(e.event_time));
                                    let note = match (after_close, e.is_access_denied()) {
                                        (true, true) => Some(("refused after the sessions were closed", "refused-after-close")),
                                        (true, false) => Some(("CRITICAL: succeeded after the sessions were closed", "succeeded-after-close")),
                                        _ => None,
                                    };
                                    view! {
                                        <tr data-after-close=note.map(|n| n.1)>
                                            <td><When at=e.event_time/></td>
                                            <td>{format!("{} ({})", e.event_name, e.event_source)}</td>
                                            <td>{e.aws_region.clone().unwrap_or_default()}</td>
                                            <td>{e.source_ip.clone().unwrap_or_default()}</td>
                                            <td>{e.error_code.clone().unwrap_or_default()}
                                                {note.map(|(text, class)| view! { " " <span class=class>{format!("({text})")}</span> })}
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                    </Table>
                </details>
            })}
            <p>
                <a href=format!("/grants/{id}/evidence.html") rel="external">"Evidence pack (printable)"</a>
                " · "
                <a href=format!("/grants/{id}/evidence.json") rel="external">"JSON"</a>
                " · "
                <a href=format!("/api/v1/grants/{id}") rel="external">"API"</a>
            </p>
        </section>

        <section aria-labelledby="audit-title">
            <h2 id="audit-title">"Audit trail"</h2>
            {if d.chain.ok {
                view! {
                    <p class="ok-note" data-testid="chain-ok">
                        "Verified: the " {d.chain.events_checked} " audit events of this grant match their hashes, the grant's record matches them, and the chain holds from them through event " {d.chain.through}
                        {match d.chain.checkpoint {
                            Some(seq) => format!(", where it matches signed checkpoint {seq}."),
                            None => " (the newest event; no signed checkpoint covers it yet).".to_owned(),
                        }}
                    </p>
                }.into_any()
            } else {
                view! {
                    <p class="error-note" role="alert" data-testid="chain-broken">
                        "The audit log has been tampered with: " {d.chain.problem.clone().unwrap_or_default()}
                    </p>
                }.into_any()
            }}
            <Table class="audit" headers=&["#", "When", "Who", "What", "Why"]>
                        {d.audit.iter().map(|e| view! {
                            <tr>
                                <td>{e.seq}</td>
                                <td><When at=e.at/></td>
                                <td>{person_label(&d.names, &e.actor)}</td>
                                <td>
                                    {e.action.clone()}
                                    {match (&e.from_state, &e.to_state) {
                                        (Some(f), Some(t)) if f != t => format!(" ({f} → {t})"),
                                        _ => String::new(),
                                    }}
                                </td>
                                <td>{e.reason.clone().unwrap_or_default()}</td>
                            </tr>
                        }).collect_view()}
            </Table>
        </section>
    }
}

/// A grant with its extensions, as one access: from the first activation to the
/// latest end, each grant linked.
#[component]
fn AccessChainView(chain: AccessChain, current: GrantId) -> impl IntoView {
    let summary = match (chain.starts_at, chain.ends_at) {
        (Some(from), Some(to)) => view! {
            <p data-testid="access-span">
                {if chain.is_live() { "One access, extended: from " } else { "One access, extended: it ran from " }}
                <When at=from/> " to " <When at=to/>
                {if chain.continuous { " without a gap" } else { ", with a gap (an extension approved after the access had ended is a new grant)" }}
                {chain.real_end.map(|r| view! { "; sessions may last until " <When at=r/> })}
                "."
            </p>
        }
        .into_any(),
        _ => view! { <p data-testid="access-span">"An extension is asked for; the access is not active yet."</p> }.into_any(),
    };
    let links = chain
        .links
        .iter()
        .map(|l| {
            let label = if l.id == current {
                "this grant".to_owned()
            } else if l.extends.is_none() {
                "the grant extended".to_owned()
            } else {
                "an extension".to_owned()
            };
            let href = format!("/grants/{}", l.id);
            view! {
                <li data-testid="access-link" data-state=l.state.as_str()>
                    <a href=href>{label}</a> " " <StateBadge state=l.state/> " · "
                    {fmt_minutes(l.duration_minutes)}
                    {l.activated_at.map(|a| view! { " · from " <When at=a/> })}
                    {l.ends_at.map(|e| view! { " to " <When at=e/> })}
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="access-chain" data-testid="access-chain">
            {summary}
            <ol>{links}</ol>
        </div>
    }
}
