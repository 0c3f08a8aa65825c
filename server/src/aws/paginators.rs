//! Paginators the SDK does not generate, in the SDK's own shape (a
//! `PaginationStream` of one result per page), so that [`super::Calls::pages`] makes
//! their calls like every other: S3 `ListObjectVersions`, whose pages continue from
//! two markers (key and version id) rather than one token.

use aws_sdk_s3::operation::list_object_versions::{
    ListObjectVersionsError, ListObjectVersionsOutput,
};
use aws_smithy_async::future::pagination_stream::fn_stream::FnStream;
use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

/// One page of object versions (and delete markers).
pub type ObjectVersionsPage =
    Result<ListObjectVersionsOutput, SdkError<ListObjectVersionsError, HttpResponse>>;

/// Every version and delete marker under `prefix` in `bucket`, page by page; each
/// page is requested when the previous one has been taken. Pass
/// [`versions_next_marker`] to `Calls::pages` as the page's token.
pub fn object_versions(
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
) -> PaginationStream<ObjectVersionsPage> {
    PaginationStream::new(FnStream::new(move |tx| {
        Box::pin(async move {
            let mut markers: (Option<String>, Option<String>) = (None, None);
            loop {
                let page = client
                    .list_object_versions()
                    .bucket(&bucket)
                    .prefix(&prefix)
                    .set_key_marker(markers.0.clone())
                    .set_version_id_marker(markers.1.clone())
                    .send()
                    .await;
                let next = match &page {
                    Ok(p) if p.is_truncated() == Some(true) => {
                        let next = (
                            p.next_key_marker().map(str::to_owned),
                            p.next_version_id_marker().map(str::to_owned),
                        );
                        // A page that would start where this one did ends the
                        // listing rather than repeating it forever.
                        (next.0.is_some() && next != markers).then_some(next)
                    }
                    _ => None,
                };
                if tx.send(page).await.is_err() {
                    return; // the reader stopped
                }
                match next {
                    Some(n) => markers = n,
                    None => return,
                }
            }
        })
    }))
}

/// Whether another page follows `page` (its key marker), for `Calls::pages`.
pub fn versions_next_marker(page: &ListObjectVersionsOutput) -> Option<&str> {
    if page.is_truncated() == Some(true) {
        page.next_key_marker()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Calls;
    use crate::metrics::Metrics;
    use aws_sdk_s3::types::ObjectVersion;
    use aws_sdk_s3::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use std::sync::Arc;

    fn page(key: &str, next: Option<(&str, &str)>) -> ListObjectVersionsOutput {
        let b = ListObjectVersionsOutput::builder()
            .versions(ObjectVersion::builder().key(key).version_id("v").build());
        match next {
            Some((k, v)) => b
                .is_truncated(true)
                .next_key_marker(k)
                .next_version_id_marker(v),
            None => b.is_truncated(false),
        }
        .build()
    }

    #[tokio::test]
    async fn versions_continue_from_both_markers_until_the_last_page() {
        let first = mock!(Client::list_object_versions)
            .match_requests(|r| r.key_marker().is_none() && r.prefix() == Some("p/"))
            .then_output(|| page("p/1", Some(("p/1", "v1"))));
        let second = mock!(Client::list_object_versions)
            .match_requests(|r| {
                r.key_marker() == Some("p/1") && r.version_id_marker() == Some("v1")
            })
            .then_output(|| page("p/2", None));
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&first, &second]);
        let keys = Calls::new(Arc::new(Metrics::new()))
            .pages(
                "ListObjectVersions",
                object_versions(client, "b".into(), "p/".into()),
                versions_next_marker,
            )
            .collect(|p| {
                p.versions
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|v| v.key)
            })
            .await
            .unwrap();
        assert_eq!(keys, ["p/1", "p/2"]);
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_page_that_repeats_its_markers_ends_the_listing() {
        let stuck =
            mock!(Client::list_object_versions).then_output(|| page("p/1", Some(("p/1", "v1"))));
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&stuck]);
        let mut stream = object_versions(client, "b".into(), "p/".into());
        let mut pages = 0;
        while let Some(p) = stream.next().await {
            p.unwrap();
            pages += 1;
            assert!(pages <= 2, "the listing did not end");
        }
        assert_eq!(pages, 2, "the first page, then the one that repeats it");
    }
}
