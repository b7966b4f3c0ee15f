//! An HTTP pass-through in front of the emulators that names every AWS call it forwards
//! (`dynamodb:PutItem`, `workspaces:CreateWorkspaces`, `ds-data:DisableUser`) and tells an
//! observer about it. The runner puts one in front of each function to record the operations it
//! calls (the IAM check compares them with the template's grants); the bench uses one to count
//! the store's calls.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An AWS operation as IAM names it: the signing service (the action's prefix) and the
/// operation's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Operation {
    pub service: String,
    pub name: String,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.service, self.name)
    }
}

/// REST operations of the simulated services (WorkDocs' paths, DS Data's `/Users/<Operation>`);
/// the JSON protocols name theirs in `X-Amz-Target`.
const REST_OPERATIONS: &[(&str, &str, &str)] =
    &[("POST", "/api/v1/users", "CreateUser"), ("GET", "/api/v1/users", "DescribeUsers")];

/// Names a request: the service from SigV4's credential scope
/// (`Credential=AKID/date/region/<service>/aws4_request`), the operation from `X-Amz-Target`
/// (`DynamoDB_20120810.PutItem`) or, for REST protocols, from the method and path.
pub fn operation(method: &Method, path: &str, headers: &HeaderMap) -> Operation {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let service = text("authorization")
        .split("Credential=")
        .nth(1)
        .and_then(|scope| scope.split(['/', ',']).nth(3))
        .unwrap_or("unsigned")
        .to_owned();
    let path = path.split('?').next().unwrap_or_default();
    let name = match text("x-amz-target").rsplit_once('.') {
        Some((_, op)) => op.to_owned(),
        None => REST_OPERATIONS
            .iter()
            .find(|(m, p, _)| method.as_str() == *m && path == *p)
            .map(|(_, _, op)| (*op).to_owned())
            .or_else(|| path.strip_prefix("/Users/").filter(|op| !op.contains('/')).map(str::to_owned))
            .unwrap_or_else(|| format!("{method} {path}")),
    };
    Operation { service, name }
}

/// Where a call goes, from its operation.
pub type Route = Arc<dyn Fn(&Operation) -> String + Send + Sync>;
/// Told of every call once it is answered: its operation, request body, status (`None`: no
/// answer) and how long the upstream took.
pub type Observer = Arc<dyn Fn(&Operation, &[u8], Option<StatusCode>, Duration) + Send + Sync>;

/// What to do to a call instead of passing it on as it is (the chaos run's store faults).
#[derive(Debug, Clone, PartialEq)]
pub enum Injection {
    Forward,
    /// Answer this error without passing the call on: `status` with the JSON protocols' error
    /// body (`{"__type": code, "message": …}`).
    Refuse {
        status: u16,
        code: String,
    },
    /// Pass it on after this long.
    Delay(Duration),
    /// Pass it on (the write is made), then hold the answer this long and answer 504: the caller
    /// times out first and never learns that its call went through.
    LoseReply(Duration),
}

/// Decides each call's fate from its operation (and its request body, to say whom it hit).
pub type Injector = Arc<dyn Fn(&Operation, &[u8]) -> Injection + Send + Sync>;

#[derive(Clone)]
struct Forward {
    route: Route,
    observe: Observer,
    inject: Option<Injector>,
    client: reqwest::Client,
}

/// How long the upstream (moto, dynoxide) may take to answer one call.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// A running pass-through; it stops when dropped.
pub struct Passthrough {
    pub url: String,
    server: tokio::task::AbortHandle,
}

impl Drop for Passthrough {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Passthrough {
    pub async fn start(route: Route, observe: Observer) -> std::io::Result<Passthrough> {
        Self::start_with(route, observe, None).await
    }

    /// As [`start`](Self::start), with faults injected into the calls as `inject` decides.
    pub async fn start_with(route: Route, observe: Observer, inject: Option<Injector>) -> std::io::Result<Passthrough> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        // An upstream that never answers (a long poll lasts 20 s at most) fails the call instead
        // of holding its caller forever.
        let client = reqwest::Client::builder().timeout(UPSTREAM_TIMEOUT).build().map_err(std::io::Error::other)?;
        let state = Forward { route, observe, inject, client };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "pass-through stopped");
            }
        })
        .abort_handle();
        Ok(Passthrough { url, server })
    }

    /// Every call to `upstream`.
    pub async fn to(upstream: &str, observe: Observer) -> std::io::Result<Passthrough> {
        let upstream = upstream.trim_end_matches('/').to_owned();
        Self::start(Arc::new(move |_: &Operation| upstream.clone()), observe).await
    }
}

async fn forward(State(proxy): State<Forward>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let op = operation(&parts.method, path, &parts.headers);
    let injection = proxy.inject.as_ref().map_or(Injection::Forward, |inject| inject(&op, &body));
    match &injection {
        Injection::Refuse { status, code } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (proxy.observe)(&op, &body, Some(status), Duration::ZERO);
            let error = serde_json::json!({ "__type": code, "message": "injected by the chaos run" });
            let mut response = (status, error.to_string()).into_response();
            response.headers_mut().insert(
                "x-amzn-errortype",
                header::HeaderValue::from_str(code).unwrap_or(header::HeaderValue::from_static("InternalFailure")),
            );
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/x-amz-json-1.0"));
            return response;
        }
        Injection::Delay(pause) => tokio::time::sleep(*pause).await,
        Injection::Forward | Injection::LoseReply(_) => {}
    }
    let started = Instant::now();
    let mut upstream = proxy.client.request(parts.method.clone(), format!("{}{path}", (proxy.route)(&op)));
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            upstream = upstream.header(name, value);
        }
    }
    let answer = async {
        let answer = upstream.body(body.clone()).send().await?;
        let (status, headers) = (answer.status(), answer.headers().clone());
        Ok::<_, reqwest::Error>((status, headers, answer.bytes().await?))
    }
    .await;
    (proxy.observe)(&op, &body, answer.as_ref().ok().map(|(status, _, _)| *status), started.elapsed());
    if let Injection::LoseReply(hold) = injection {
        tokio::time::sleep(hold).await;
        return (StatusCode::GATEWAY_TIMEOUT, "reply lost by the chaos run").into_response();
    }
    match answer {
        Ok((status, headers, bytes)) => respond(status, &headers, bytes),
        Err(e) => (StatusCode::BAD_GATEWAY, format!("pass-through: {e}")).into_response(),
    }
}

fn respond(status: StatusCode, headers: &HeaderMap, bytes: Bytes) -> Response {
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in headers {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(service: &str, target: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=test/20261127/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        headers.insert("authorization", auth.parse().unwrap());
        if let Some(target) = target {
            headers.insert("x-amz-target", target.parse().unwrap());
        }
        headers
    }

    #[test]
    fn calls_are_named_as_iam_names_their_actions_in_every_protocol() {
        let named = |method: Method, path: &str, headers: HeaderMap| operation(&method, path, &headers).to_string();
        let dynamodb = signed("dynamodb", Some("DynamoDB_20120810.TransactWriteItems"));
        assert_eq!(named(Method::POST, "/", dynamodb), "dynamodb:TransactWriteItems");
        assert_eq!(named(Method::POST, "/", signed("sqs", Some("AmazonSQS.SendMessageBatch"))), "sqs:SendMessageBatch");
        let workspaces = signed("workspaces", Some("WorkspacesService.CreateWorkspaces"));
        assert_eq!(named(Method::POST, "/", workspaces), "workspaces:CreateWorkspaces");
        let ds = signed("ds", Some("DirectoryService_20150416.ResetUserPassword"));
        assert_eq!(named(Method::POST, "/", ds), "ds:ResetUserPassword");
        let data = signed("ds-data", None);
        assert_eq!(named(Method::POST, "/Users/DisableUser?DirectoryId=d-1", data), "ds-data:DisableUser");
        assert_eq!(named(Method::POST, "/api/v1/users", signed("workdocs", None)), "workdocs:CreateUser");
        assert_eq!(named(Method::GET, "/api/v1/users?query=x", signed("workdocs", None)), "workdocs:DescribeUsers");
        assert_eq!(named(Method::GET, "/other", HeaderMap::new()), "unsigned:GET /other");
    }
}
