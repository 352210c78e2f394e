//! gRPC through portshare with a real gRPC client and server (tonic): unary
//! and server-streaming calls over HTTP/2, trailers intact, streams not
//! buffered, and denials answered as gRPC statuses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use hyper::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{ALICE, CAROL, Portshare, within};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tonic::codec::ProstCodec;
use tonic::{Code, Status};

#[derive(Clone, PartialEq, prost::Message)]
struct Hello {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Tick {
    #[prost(uint32, tag = "1")]
    n: u32,
}

const SAY_HELLO: &str = "/portshare.test.Greeter/SayHello";
const COUNT: &str = "/portshare.test.Greeter/Count";

struct SayHello;

impl tonic::server::UnaryService<Hello> for SayHello {
    type Response = Hello;
    type Future = Ready<Result<tonic::Response<Hello>, Status>>;

    fn call(&mut self, request: tonic::Request<Hello>) -> Self::Future {
        let name = request.into_inner().name;
        ready(if name.is_empty() {
            Err(Status::invalid_argument("name must not be empty"))
        } else {
            Ok(tonic::Response::new(Hello {
                name: format!("hello {name}"),
            }))
        })
    }
}

/// Streams tick 1 at once, then waits for `release` before ticks 2 and 3.
struct Count(Arc<Notify>);

impl tonic::server::ServerStreamingService<Hello> for Count {
    type Response = Tick;
    type ResponseStream = BoxStream<'static, Result<Tick, Status>>;
    type Future = Ready<Result<tonic::Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, _request: tonic::Request<Hello>) -> Self::Future {
        let release = self.0.clone();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let _ = tx.send(Ok(Tick { n: 1 })).await;
            release.notified().await;
            let _ = tx.send(Ok(Tick { n: 2 })).await;
            let _ = tx.send(Ok(Tick { n: 3 })).await;
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        ready(Ok(tonic::Response::new(stream.boxed())))
    }
}

/// A gRPC server speaking HTTP/2 with prior knowledge (h2c).
async fn spawn_grpc_app() -> (u16, Arc<Notify>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let release = Arc::new(Notify::new());
    let shared = release.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let release = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let release = release.clone();
                    async move {
                        let mut grpc =
                            tonic::server::Grpc::new(ProstCodec::<Hello, Hello>::default());
                        let response = match req.uri().path() {
                            SAY_HELLO => grpc.unary(SayHello, req).await,
                            COUNT => {
                                let mut grpc =
                                    tonic::server::Grpc::new(ProstCodec::<Tick, Hello>::default());
                                grpc.server_streaming(Count(release), req).await
                            }
                            _ => Status::unimplemented("no such method").into_http(),
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (port, release)
}

/// Resolves every name to 127.0.0.1, so the client can use app hostnames.
#[derive(Clone)]
struct Loopback;

impl tower_service::Service<Name> for Loopback {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Name) -> Self::Future {
        ready(Ok(vec![SocketAddr::from(([127, 0, 0, 1], 0))].into_iter()))
    }
}

type Channel = Client<HttpConnector<Loopback>, tonic::body::BoxBody>;

/// A tonic client for the app on `port`, through portshare, with an
/// optional session token as metadata.
fn client(ps: &Portshare, port: u16) -> tonic::client::Grpc<Channel> {
    let channel: Channel = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(HttpConnector::new_with_resolver(Loopback));
    let origin = format!(
        "http://{port}--main--dev--alice.apps.localhost:{}",
        ps.addr.port()
    );
    tonic::client::Grpc::with_origin(channel, origin.parse().unwrap())
}

fn request<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("coder-session-token", token.parse().unwrap());
    }
    request
}

async fn say_hello(
    grpc: &mut tonic::client::Grpc<Channel>,
    name: &str,
    token: Option<&str>,
) -> Result<Hello, Status> {
    within("the client", grpc.ready()).await.unwrap();
    let call = grpc.unary(
        request(Hello { name: name.into() }, token),
        SAY_HELLO.parse().unwrap(),
        ProstCodec::<Hello, Hello>::default(),
    );
    within("the unary call", call)
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn unary_call_through_an_allowed_share() {
    let ps = Portshare::start().await;
    let (port, _) = spawn_grpc_app().await;
    ps.share(port, "authenticated").await;
    let mut grpc = client(&ps, port);
    let reply = say_hello(&mut grpc, "carol", Some(CAROL)).await.unwrap();
    assert_eq!(reply.name, "hello carol");

    // The app's own error status and message travel in the trailers.
    let status = say_hello(&mut grpc, "", Some(CAROL)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "name must not be empty");
}

#[tokio::test]
async fn server_streaming_is_relayed_as_it_comes() {
    let ps = Portshare::start().await;
    let (port, release) = spawn_grpc_app().await;
    let mut grpc = client(&ps, port);
    within("the client", grpc.ready()).await.unwrap();
    let call = grpc.server_streaming(
        request(
            Hello {
                name: "alice".into(),
            },
            Some(ALICE),
        ),
        COUNT.parse().unwrap(),
        ProstCodec::<Hello, Tick>::default(),
    );
    let mut stream = within("the stream to open", call)
        .await
        .unwrap()
        .into_inner();
    // Tick 1 arrives while the app still holds the rest of the stream.
    let first = within("tick 1", stream.message()).await.unwrap();
    assert_eq!(first, Some(Tick { n: 1 }));
    release.notify_one();
    let mut rest = Vec::new();
    while let Some(tick) = within("more ticks", stream.message()).await.unwrap() {
        rest.push(tick.n);
    }
    assert_eq!(rest, vec![2, 3]);
    // The stream ended with grpc-status 0 in its trailers.
    let trailers = within("the trailers", stream.trailers())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(trailers.get("grpc-status").unwrap(), "0");
}

#[tokio::test]
async fn denied_calls_get_grpc_statuses() {
    let ps = Portshare::start().await;
    let (port, _) = spawn_grpc_app().await;
    // No share: alice's port only.
    let mut grpc = client(&ps, port);
    let status = say_hello(&mut grpc, "x", None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "Sign in to open this application");

    let status = say_hello(&mut grpc, "x", Some(CAROL)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "Application Not Found");

    let reply = say_hello(&mut grpc, "alice", Some(ALICE)).await.unwrap();
    assert_eq!(reply.name, "hello alice");
}
