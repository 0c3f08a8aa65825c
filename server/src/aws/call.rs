//! The one way an AWS call is made: [`Calls::call`] for a single request,
//! [`Calls::pages`] for the SDK's paginators (one call per page). Each call is paced,
//! bounded by the call timeout, timed, counted, logged once and classified.

use super::{classify, AwsError, AwsErrorKind, Pacer, Priority};
use crate::metrics::Metrics;
use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How AWS calls are made: the pacer they share, the call timeout and the metrics
/// they are counted in (`timebox_aws_call_seconds{operation}`,
/// `timebox_aws_call_errors_total{operation,code}`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Calls {
    metrics: Arc<Metrics>,
    pacer: Arc<Pacer>,
    timeout: Duration,
    priority: Priority,
}

/// The default of `aws.call_timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Calls {
    /// Unpaced calls with the default 10 s timeout (tests; production builds them
    /// with [`super::AwsSetup::calls`]).
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            pacer: Arc::new(Pacer::unlimited()),
            timeout: DEFAULT_TIMEOUT,
            priority: Priority::Normal,
        }
    }

    /// The same, sharing `pacer`.
    pub fn paced(&self, pacer: Arc<Pacer>) -> Self {
        Self {
            pacer,
            ..self.clone()
        }
    }

    /// The same, paced as `priority` (revocations: [`Priority::First`]).
    pub fn with_priority(&self, priority: Priority) -> Self {
        Self {
            priority,
            ..self.clone()
        }
    }

    /// The same, giving up on a call after `timeout`.
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self {
            timeout,
            ..self.clone()
        }
    }

    /// Sends one request: `request` is the SDK's `….send()` future (nothing is sent
    /// before it is polled, so pacing comes first).
    pub async fn call<T, E>(
        &self,
        operation: &'static str,
        request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<T, AwsError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.instrumented(operation, async {
            request.await.map_err(|e| classify(operation, e))
        })
        .await
    }

    /// The pages of a paginated operation: `pages` is the SDK's
    /// `….into_paginator().send()`, `next_token` reads a page's token (how
    /// [`Pages::next`] knows the last page came without asking again).
    pub fn pages<P, E, N>(
        &self,
        operation: &'static str,
        pages: PaginationStream<Result<P, SdkError<E, HttpResponse>>>,
        next_token: N,
    ) -> Pages<P, E, N>
    where
        N: Fn(&P) -> Option<&str>,
    {
        Pages {
            calls: self.clone(),
            operation,
            stream: pages,
            next_token,
            done: false,
        }
    }

    /// Pace → call with timeout → time → count → log → classified result.
    async fn instrumented<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, AwsError>>,
    ) -> Result<T, AwsError> {
        self.pacer.acquire_as(self.priority).await;
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| Err(AwsError::timeout(operation, self.timeout)));
        let elapsed = started.elapsed();
        self.metrics
            .aws_call_seconds
            .with_label_values(&[operation])
            .observe(elapsed.as_secs_f64());
        // Only the operation, the time and AWS's answer are logged: never a request.
        match &result {
            Ok(_) => tracing::debug!(operation, ?elapsed, "AWS call"),
            Err(e) => {
                self.metrics
                    .aws_call_errors
                    .with_label_values(&[operation, &e.code])
                    .inc();
                // "Not there" is an answer its caller expects and handles (the S3
                // sink asks before each write); everything else is worth a warning.
                if e.kind == AwsErrorKind::NotFound {
                    tracing::debug!(operation, ?elapsed, code = %e.code, message = %e.message, "AWS call: not found");
                } else {
                    tracing::warn!(operation, ?elapsed, code = %e.code, kind = e.kind.as_str(), message = %e.message, "AWS call failed");
                }
            }
        }
        result
    }
}

/// The pages of one paginated operation, each fetched as one [`Calls`] call.
pub struct Pages<P, E, N> {
    calls: Calls,
    operation: &'static str,
    stream: PaginationStream<Result<P, SdkError<E, HttpResponse>>>,
    next_token: N,
    /// The last page came (or an error, after which the SDK's paginator ends).
    done: bool,
}

impl<P, E, N> std::fmt::Debug for Pages<P, E, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages")
            .field("operation", &self.operation)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<P, E, N> Pages<P, E, N>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    N: Fn(&P) -> Option<&str>,
{
    /// The next page; `None` after the last. A page is one call: paced, timed out,
    /// counted. After the last page no call is made and no pacer slot taken.
    pub async fn next(&mut self) -> Result<Option<P>, AwsError> {
        if self.done {
            return Ok(None);
        }
        let (operation, stream) = (self.operation, &mut self.stream);
        let page = self
            .calls
            .instrumented(operation, async {
                stream
                    .next()
                    .await
                    .transpose()
                    .map_err(|e| classify(operation, e))
            })
            .await;
        self.done = match &page {
            Ok(Some(p)) => (self.next_token)(p).is_none_or(str::is_empty),
            Ok(None) | Err(_) => true,
        };
        page
    }

    /// Every page's items, in order.
    pub async fn collect<T, I>(mut self, mut items: impl FnMut(P) -> I) -> Result<Vec<T>, AwsError>
    where
        I: IntoIterator<Item = T>,
    {
        let mut all = Vec::new();
        while let Some(page) = self.next().await? {
            all.extend(items(page));
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::AwsErrorKind;
    use aws_sdk_ssoadmin::operation::describe_permission_set::DescribePermissionSetError;
    use aws_sdk_ssoadmin::operation::list_permission_sets::ListPermissionSetsOutput;
    use aws_sdk_ssoadmin::types::error::ThrottlingException;
    use aws_sdk_ssoadmin::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn seconds_count(m: &Metrics, operation: &str) -> u64 {
        m.aws_call_seconds
            .with_label_values(&[operation])
            .get_sample_count()
    }

    fn errors(m: &Metrics, operation: &str, code: &str) -> u64 {
        m.aws_call_errors
            .with_label_values(&[operation, code])
            .get()
    }

    #[tokio::test]
    async fn a_failed_call_is_timed_counted_and_classified() {
        let throttled = mock!(Client::describe_permission_set).then_error(|| {
            DescribePermissionSetError::ThrottlingException(
                ThrottlingException::builder()
                    .message("Rate exceeded")
                    .meta(
                        aws_sdk_ssoadmin::error::ErrorMetadata::builder()
                            .code("ThrottlingException")
                            .build(),
                    )
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_ssoadmin, RuleMode::MatchAny, [&throttled]);
        let metrics = Arc::new(Metrics::new());
        let calls = Calls::new(metrics.clone());
        let err = calls
            .call(
                "DescribePermissionSet",
                client.describe_permission_set().send(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, AwsErrorKind::Retryable);
        assert_eq!(err.code, "ThrottlingException");
        assert_eq!(seconds_count(&metrics, "DescribePermissionSet"), 1);
        assert_eq!(
            errors(&metrics, "DescribePermissionSet", "ThrottlingException"),
            1
        );
    }

    #[tokio::test]
    async fn a_call_without_an_answer_times_out() {
        let metrics = Arc::new(Metrics::new());
        let calls = Calls::new(metrics.clone()).with_timeout(Duration::from_millis(20));
        let never = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<(), SdkError<DescribePermissionSetError, HttpResponse>>(())
        };
        let err = calls
            .call("DescribePermissionSet", never)
            .await
            .unwrap_err();
        assert_eq!(
            (err.kind, err.code.as_str()),
            (AwsErrorKind::Retryable, "Timeout")
        );
        assert_eq!(errors(&metrics, "DescribePermissionSet", "Timeout"), 1);
    }

    #[tokio::test]
    async fn pages_are_followed_and_the_last_one_ends_without_a_call() {
        let pages = mock!(Client::list_permission_sets)
            .sequence()
            .output(|| {
                ListPermissionSetsOutput::builder()
                    .permission_sets("ps-1")
                    .next_token("2")
                    .build()
            })
            .output(|| {
                ListPermissionSetsOutput::builder()
                    .permission_sets("ps-2")
                    .build()
            })
            .build();
        let client = mock_client!(aws_sdk_ssoadmin, RuleMode::MatchAny, [&pages]);
        let metrics = Arc::new(Metrics::new());
        // Paced: a call after the last page would wait a whole second.
        let calls = Calls::new(metrics.clone()).paced(Arc::new(Pacer::per_second(1)));
        let started = Instant::now();
        let mut stream = calls.pages(
            "ListPermissionSets",
            client.list_permission_sets().into_paginator().send(),
            |p| p.next_token(),
        );
        let mut arns = Vec::new();
        while let Some(page) = stream.next().await.unwrap() {
            arns.extend(page.permission_sets.unwrap_or_default());
        }
        assert_eq!(arns, vec!["ps-1", "ps-2"]);
        assert_eq!(pages.num_calls(), 2);
        assert_eq!(seconds_count(&metrics, "ListPermissionSets"), 2);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_millis(1900),
            "{waited:?}: the second page waited for its slot, nothing after it"
        );
    }
}
