//! The thin client: sends what [`super::ops`] builds through `azure_core`'s pipeline and polls
//! long-running operations. No request or answer logic lives here.
//!
//! The pipeline uses only the `begin_*` calls and [`LrsClient::poll`]: the create operation may
//! run until cutover, so nothing inside a Functions invocation may wait on it.
//! [`LrsClient::start`], [`LrsClient::complete`] and [`LrsClient::wait`] follow an operation to its
//! end and are for tools and tests only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use azure_core::http::headers::Headers;
use azure_core::http::policies::Policy;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{
    ClientOptions, Context, ExponentialRetryOptions, Pipeline, PipelineSendOptions, Request,
    RetryOptions, UserAgentOptions,
};
use tracing::{Instrument, debug, info_span};
use url::Url;

use super::error::Error;
use super::model::{Database, ManagedInstance, OperationStatus, RestoreDetails};
use super::ops::{
    Accepted, CompleteRestore, GetDatabase, GetManagedInstance, GetRestoreDetails, GetStorageUsed,
    ListDatabases, LongRunning, PollKind, PollOperation, StartRestore, is_loopback_host,
};
use super::{ARM_SCOPE, DatabaseId, InstanceId};

/// How the client authenticates to ARM.
#[derive(Clone)]
pub enum Auth {
    /// Bearer tokens for `https://management.azure.com/.default` from an `azure_identity`
    /// credential (`ManagedIdentityCredential` in Azure, `DeveloperToolsCredential` locally).
    Token(Arc<dyn TokenCredential>),
    /// No token at all: only for a plain-`http` loopback endpoint such as the simulator.
    UnauthenticatedLoopback,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Auth::Token"),
            Auth::UnauthenticatedLoopback => f.write_str("Auth::UnauthenticatedLoopback"),
        }
    }
}

/// Client settings. The defaults suit real ARM; tests shorten the delays.
#[derive(Debug, Clone)]
pub struct LrsClientOptions {
    /// Retries of 429 (after `Retry-After`), 408, 5xx and transport failures. The default total
    /// (15 s) stays well within an invocation's 45 s budget.
    pub retry: RetryOptions,
    /// How long to wait between polls when the server gives no `Retry-After`.
    pub default_poll_interval: Duration,
    /// How long [`LrsClient::wait`] follows an operation before giving up with
    /// [`Error::Timeout`].
    pub max_wait: Duration,
}

impl Default for LrsClientOptions {
    fn default() -> Self {
        LrsClientOptions {
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: azure_core::time::Duration::seconds(1),
                max_retries: 4,
                max_total_elapsed: azure_core::time::Duration::seconds(15),
                max_delay: azure_core::time::Duration::seconds(8),
            }),
            default_poll_interval: Duration::from_secs(10),
            max_wait: Duration::from_secs(30 * 60),
        }
    }
}

/// The LRS client. Cheap to clone; holds no per-database state.
#[derive(Debug, Clone)]
pub struct LrsClient {
    pipeline: Pipeline,
    endpoint: Url,
    options: LrsClientOptions,
}

impl LrsClient {
    /// Builds a client for an ARM endpoint (`https://management.azure.com`, or the simulator's
    /// `http://127.0.0.1:<port>`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the endpoint is not a URL, when a token would be sent over plain
    /// `http`, or when the unauthenticated mode is asked for anything but an `http` loopback
    /// endpoint.
    pub fn new(endpoint: &str, auth: Auth, options: LrsClientOptions) -> Result<Self, Error> {
        let endpoint = Url::parse(endpoint.trim()).map_err(|e| Error::InvalidInput {
            reason: format!("the arm endpoint {endpoint:?} is not a url: {e}"),
        })?;
        if endpoint.query().is_some() || endpoint.fragment().is_some() {
            return Err(Error::InvalidInput {
                reason: "the arm endpoint must not carry a query or fragment".into(),
            });
        }
        let loopback = endpoint.host_str().is_some_and(is_loopback_host);
        let mut per_try: Vec<Arc<dyn Policy>> = Vec::new();
        match &auth {
            Auth::Token(credential) => {
                if endpoint.scheme() != "https" {
                    return Err(Error::InvalidInput {
                        reason: format!(
                            "refusing to send arm tokens to {endpoint}: tokens need https; for the \
                             simulator use the unauthenticated loopback mode"
                        ),
                    });
                }
                per_try.push(Arc::new(BearerTokenAuthorizationPolicy::new(
                    credential.clone(),
                    [ARM_SCOPE],
                )));
            }
            Auth::UnauthenticatedLoopback => {
                if endpoint.scheme() != "http" || !loopback {
                    return Err(Error::InvalidInput {
                        reason: format!(
                            "unauthenticated mode is only for a plain-http loopback endpoint (the \
                             simulator), not {endpoint}: real arm needs a credential"
                        ),
                    });
                }
            }
        }
        let client_options = ClientOptions {
            retry: options.retry.clone(),
            user_agent: UserAgentOptions {
                application_id: Some("lrs-autopilot".into()),
            },
            transport: Some(crate::http::transport()),
            ..ClientOptions::default()
        };
        let pipeline = Pipeline::new(
            Some(env!("CARGO_PKG_NAME")),
            Some(env!("CARGO_PKG_VERSION")),
            client_options,
            Vec::new(),
            per_try,
            None,
        );
        Ok(LrsClient {
            pipeline,
            endpoint,
            options,
        })
    }

    /// The ARM endpoint this client talks to.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Sends one request through the pipeline (which retries) and returns the raw answer.
    async fn send(
        &self,
        operation: &'static str,
        mut request: Request,
    ) -> Result<(u16, Headers, Vec<u8>), Error> {
        let span = info_span!(
            "arm",
            op = operation,
            path = request.url().path(),
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty
        );
        let started = Instant::now();
        let options = PipelineSendOptions {
            skip_checks: true,
            ..PipelineSendOptions::default()
        };
        let result = self
            .pipeline
            .send(&Context::new(), &mut request, Some(options))
            .instrument(span.clone())
            .await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        span.record("latency_ms", latency_ms);
        let response = result.map_err(|e| match e.kind() {
            azure_core::error::ErrorKind::Credential => Error::Credential {
                message: e.to_string(),
            },
            _ => Error::Transport {
                message: e.to_string(),
            },
        })?;
        let (status, headers, body) = response.deconstruct();
        let status = u16::from(status);
        span.record("status", status);
        span.in_scope(|| debug!(status, latency_ms, "arm call"));
        Ok((status, headers, body.to_vec()))
    }

    /// Reads the managed instance (for its `location`).
    ///
    /// # Errors
    /// See [`Error`]; 404 when there is no such instance.
    pub async fn get_managed_instance(
        &self,
        instance: &InstanceId,
    ) -> Result<ManagedInstance, Error> {
        let op = GetManagedInstance {
            instance: instance.clone(),
        };
        let (status, headers, body) = self
            .send("get_managed_instance", op.into_request(&self.endpoint))
            .await?;
        GetManagedInstance::parse_response(status, &headers, &body)
    }

    /// Lists the instance's databases, following `nextLink` (at most 100 pages).
    ///
    /// # Errors
    /// See [`Error`]; [`Error::InvalidInput`] for a `nextLink` away from the ARM endpoint.
    pub async fn list_databases(&self, instance: &InstanceId) -> Result<Vec<Database>, Error> {
        let mut out = Vec::new();
        let mut next = None;
        for _ in 0..100 {
            let op = ListDatabases {
                instance: instance.clone(),
                next_link: next.take(),
            };
            let (status, headers, body) = self
                .send("list_databases", op.into_request(&self.endpoint)?)
                .await?;
            let page = ListDatabases::parse_response(status, &headers, &body)?;
            out.extend(page.value);
            match page.next_link.filter(|l| !l.trim().is_empty()) {
                Some(link) => {
                    next = Some(Url::parse(&link).map_err(|e| Error::InvalidInput {
                        reason: format!("ARM's nextLink is not a url: {e}"),
                    })?);
                }
                None => return Ok(out),
            }
        }
        Ok(out)
    }

    /// The instance's used storage in MB from Azure Monitor, `None` when the series is empty.
    ///
    /// # Errors
    /// See [`Error`]; 403 when the identity lacks Monitoring Reader on the instance.
    pub async fn storage_used_mb(&self, instance: &InstanceId) -> Result<Option<u64>, Error> {
        let op = GetStorageUsed {
            instance: instance.clone(),
        };
        let (status, headers, body) = self
            .send("storage_used", op.into_request(&self.endpoint))
            .await?;
        GetStorageUsed::parse_response(status, &headers, &body)
    }

    /// Starts LRS and returns without waiting: the operation to follow, if any.
    ///
    /// # Errors
    /// See [`Error`]; [`Error::is_name_in_use`] when the database already exists.
    pub async fn begin_start(&self, start: &StartRestore) -> Result<Accepted, Error> {
        let (status, headers, body) = self
            .send("start", start.into_request(&self.endpoint))
            .await?;
        StartRestore::parse_response(status, &headers, &body)
    }

    /// Starts LRS and waits for the start operation to finish. For tools and tests only: the
    /// create operation may run until cutover.
    ///
    /// # Errors
    /// As [`LrsClient::begin_start`] and [`LrsClient::wait`].
    pub async fn start(&self, start: &StartRestore) -> Result<(), Error> {
        let accepted = self.begin_start(start).await?;
        self.wait(&accepted).await
    }

    /// Reads restoreDetails.
    ///
    /// # Errors
    /// See [`Error`]; `RestoreDetailsNotAvailableOrExpired` once the job is gone.
    pub async fn restore_details(&self, database: &DatabaseId) -> Result<RestoreDetails, Error> {
        let op = GetRestoreDetails {
            database: database.clone(),
        };
        let (status, headers, body) = self
            .send("restore_details", op.into_request(&self.endpoint))
            .await?;
        GetRestoreDetails::parse_response(status, &headers, &body)
    }

    /// Asks LRS to complete and returns without waiting.
    ///
    /// # Errors
    /// See [`Error`]: [`Error::is_not_last_restored`] when the named file is not the last restored
    /// one; [`Error::is_already_completing`] after an earlier complete.
    pub async fn begin_complete(&self, complete: &CompleteRestore) -> Result<Accepted, Error> {
        let (status, headers, body) = self
            .send("complete", complete.into_request(&self.endpoint))
            .await?;
        CompleteRestore::parse_response(status, &headers, &body)
    }

    /// Asks LRS to complete and waits for the operation to finish. For tools and tests only.
    ///
    /// # Errors
    /// As [`LrsClient::begin_complete`] and [`LrsClient::wait`].
    pub async fn complete(&self, complete: &CompleteRestore) -> Result<(), Error> {
        let accepted = self.begin_complete(complete).await?;
        self.wait(&accepted).await
    }

    /// Reads the database (for `properties.status`).
    ///
    /// # Errors
    /// See [`Error`]; 404 when there is no such database.
    pub async fn get_database(&self, database: &DatabaseId) -> Result<Database, Error> {
        let op = GetDatabase {
            database: database.clone(),
        };
        let (status, headers, body) = self
            .send("get_database", op.into_request(&self.endpoint))
            .await?;
        GetDatabase::parse_response(status, &headers, &body)
    }

    /// Polls an operation once.
    ///
    /// # Errors
    /// [`Error::OperationFailed`] when it failed; [`Error::InvalidInput`] when the polling URL is
    /// not on the ARM endpoint (a token must not leave for another host).
    pub async fn poll(&self, operation: &LongRunning) -> Result<OperationStatus, Error> {
        let url = operation.poll.url();
        if url.origin() != self.endpoint.origin() {
            return Err(Error::InvalidInput {
                reason: format!(
                    "arm asked to poll {}, which is not the arm endpoint {}; refusing to follow it",
                    url.origin().ascii_serialization(),
                    self.endpoint.origin().ascii_serialization()
                ),
            });
        }
        let op = PollOperation {
            poll: operation.poll.clone(),
        };
        let (status, headers, body) = self.send("poll", op.into_request()).await?;
        op.parse_response(status, &headers, &body)
    }

    /// Follows an operation to its end, honouring `Retry-After` between polls.
    ///
    /// # Errors
    /// [`Error::OperationFailed`] when it failed, [`Error::Timeout`] after
    /// [`LrsClientOptions::max_wait`], or the poll's own error.
    pub async fn wait(&self, accepted: &Accepted) -> Result<(), Error> {
        let Accepted::Running(operation) = accepted else {
            return Ok(());
        };
        let started = Instant::now();
        let mut current = operation.clone();
        loop {
            let delay = current
                .retry_after_secs
                .map(Duration::from_secs)
                .unwrap_or(self.options.default_poll_interval);
            if started.elapsed() + delay > self.options.max_wait {
                return Err(Error::Timeout {
                    waited_secs: started.elapsed().as_secs(),
                });
            }
            tokio::time::sleep(delay).await;
            match self.poll(&current).await? {
                OperationStatus::Succeeded => return Ok(()),
                OperationStatus::InProgress {
                    retry_after_secs,
                    next,
                } => {
                    if let (Some(next), PollKind::Location(_)) = (next, &current.poll) {
                        current.poll = PollKind::Location(next);
                    }
                    current.retry_after_secs = retry_after_secs;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthenticated_mode_is_for_http_loopback_only() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            assert!(
                LrsClient::new(
                    ok,
                    Auth::UnauthenticatedLoopback,
                    LrsClientOptions::default()
                )
                .is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "https://management.azure.com",
            "http://management.azure.com",
            "http://10.1.2.3:80",
            "https://127.0.0.1:8443",
        ] {
            let err = LrsClient::new(
                bad,
                Auth::UnauthenticatedLoopback,
                LrsClientOptions::default(),
            )
            .expect_err("refused");
            assert!(
                err.to_string().contains("unauthenticated mode is only for"),
                "{bad}: {err}"
            );
        }
        let err = LrsClient::new(
            "not a url",
            Auth::UnauthenticatedLoopback,
            LrsClientOptions::default(),
        )
        .expect_err("refused");
        assert!(err.to_string().contains("is not a url"));
    }

    #[derive(Debug)]
    struct NoToken;

    #[async_trait::async_trait]
    impl TokenCredential for NoToken {
        async fn get_token(
            &self,
            _scopes: &[&str],
            _options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
        ) -> azure_core::Result<azure_core::credentials::AccessToken> {
            Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "no token in unit tests",
            ))
        }
    }

    #[test]
    fn tokens_are_never_sent_over_plain_http() {
        let err = LrsClient::new(
            "http://127.0.0.1:8080",
            Auth::Token(Arc::new(NoToken)),
            LrsClientOptions::default(),
        )
        .expect_err("refused");
        assert!(err.to_string().contains("tokens need https"), "{err}");
        assert!(
            LrsClient::new(
                "https://management.azure.com",
                Auth::Token(Arc::new(NoToken)),
                LrsClientOptions::default()
            )
            .is_ok()
        );
    }

    #[tokio::test]
    async fn refuses_to_poll_another_host() {
        let client = LrsClient::new(
            "http://127.0.0.1:1",
            Auth::UnauthenticatedLoopback,
            LrsClientOptions::default(),
        )
        .expect("valid");
        let op = LongRunning {
            poll: PollKind::Location(Url::parse("http://evil.example/op").expect("static")),
            retry_after_secs: Some(0),
        };
        let err = client.poll(&op).await.expect_err("refused");
        assert!(err.to_string().contains("refusing to follow it"), "{err}");
    }
}
