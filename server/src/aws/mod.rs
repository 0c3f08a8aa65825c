//! The AWS kit: every AWS call in Timebox goes through it. [`AwsSetup`] builds the
//! clients from `[aws]`; [`Calls`] makes each call (paced by a [`Pacer`], bounded by
//! the call timeout, timed, counted, logged) and classifies its failure as an
//! [`AwsError`]; paginated operations use the SDK's paginators through [`Pages`].
//! The adapters (`identity_center::sdk`, `evidence::{cloudtrail,lake,detective}`)
//! only say what each operation asks and what its answer means. An operation the SDK
//! has no paginator for gets one in the SDK's shape in `paginators`.

mod call;
mod error;
mod pacer;
pub mod paginators;
mod setup;

pub use call::{Calls, Pages};
pub use error::{classify, AwsError, AwsErrorKind};
pub use pacer::{Pacer, Priority};
pub use setup::AwsSetup;
