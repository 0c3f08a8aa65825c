//! Time shown in the viewer's time zone, and live updates.
//!
//! - [`When`]: a `<time>` element. The server renders UTC (it does not know the
//!   viewer's zone); once hydrated, the browser rewrites it in local time, with the
//!   UTC time on hover.
//! - [`use_refresh`]: a counter that goes up whenever the server announces a change
//!   to a grant the viewer may see (server-sent events from `/api/v1/events`); pages
//!   re-read their data when it changes. No polling.

use chrono::{DateTime, FixedOffset, Utc};
use leptos::prelude::*;

/// The viewer's offset from UTC in minutes (east positive), once known.
#[derive(Debug, Clone, Copy)]
pub struct LocalOffset(pub RwSignal<Option<i32>>);

/// Bumped on every announced change.
#[derive(Debug, Clone, Copy)]
pub struct Refresh(pub RwSignal<u64>);

/// Call once in the app: provides [`LocalOffset`] and [`Refresh`] and, in the
/// browser, reads the time zone and opens the event stream.
pub fn provide_live() {
    let offset = RwSignal::new(None::<i32>);
    let refresh = RwSignal::new(0_u64);
    provide_context(LocalOffset(offset));
    provide_context(Refresh(refresh));
    let viewer = super::use_viewer();
    // In the browser only (effects do not run on the server): read the time zone once,
    // and open the event stream once the viewer is known to be signed in (an
    // anonymous visitor has nothing to follow, and the server would refuse).
    Effect::new(move |opened: Option<bool>| {
        if opened.is_none() {
            #[cfg(feature = "hydrate")]
            {
                // JavaScript gives minutes *behind* UTC.
                let minutes = -(js_sys::Date::new_0().get_timezone_offset() as i32);
                offset.set(Some(minutes));
            }
        }
        let signed_in = viewer
            .get()
            .and_then(Result::ok)
            .is_some_and(|v| v.caller.is_signed_in());
        let opened = opened.unwrap_or(false);
        if signed_in && !opened {
            #[cfg(feature = "hydrate")]
            open_event_stream(refresh);
            return true;
        }
        opened
    });
}

#[cfg(feature = "hydrate")]
fn open_event_stream(refresh: RwSignal<u64>) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    let Ok(source) = web_sys::EventSource::new("/api/v1/events") else {
        return;
    };
    let on_change =
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |_: web_sys::MessageEvent| {
            refresh.update(|n| *n += 1);
        });
    for kind in ["grant", "reload"] {
        let _ = source.add_event_listener_with_callback(kind, on_change.as_ref().unchecked_ref());
    }
    // The stream lives as long as the page.
    on_change.forget();
    std::mem::forget(source);
}

pub fn use_refresh() -> RwSignal<u64> {
    use_context::<Refresh>().map_or_else(|| RwSignal::new(0), |r| r.0)
}

fn use_offset() -> Option<RwSignal<Option<i32>>> {
    use_context::<LocalOffset>().map(|o| o.0)
}

/// `2026-11-28 14:05` in the given offset, or in UTC with a `UTC` suffix.
pub fn format_at(t: DateTime<Utc>, offset_minutes: Option<i32>) -> String {
    match offset_minutes.and_then(|m| FixedOffset::east_opt(m * 60)) {
        Some(off) => t.with_timezone(&off).format("%Y-%m-%d %H:%M").to_string(),
        None => format!("{} UTC", t.format("%Y-%m-%d %H:%M")),
    }
}

/// A time in the viewer's zone, UTC on hover.
#[component]
pub fn When(at: DateTime<Utc>) -> impl IntoView {
    let offset = use_offset();
    let text = move || format_at(at, offset.and_then(|o| o.get()));
    view! {
        <time datetime=at.to_rfc3339() title=format!("{} UTC", at.format("%Y-%m-%d %H:%M:%S"))>
            {text}
        </time>
    }
}

/// Like [`When`] for an optional time, with a dash when absent.
#[component]
pub fn MaybeWhen(at: Option<DateTime<Utc>>) -> impl IntoView {
    match at {
        Some(at) => view! { <When at=at/> }.into_any(),
        None => view! { <span class="muted">"—"</span> }.into_any(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_in_utc_until_the_zone_is_known() {
        let t = Utc
            .with_ymd_and_hms(2026, 11, 28, 14, 5, 0)
            .single()
            .expect("time");
        assert_eq!(format_at(t, None), "2026-11-28 14:05 UTC");
        assert_eq!(format_at(t, Some(60)), "2026-11-28 15:05");
        assert_eq!(format_at(t, Some(-300)), "2026-11-28 09:05");
    }
}
