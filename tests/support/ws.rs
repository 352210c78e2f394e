//! A WebSocket client through portshare.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response as WsResponse;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::within;

pub type Ws = WebSocketStream<TcpStream>;

/// Opens a WebSocket through portshare at `addr` to the app at `host`,
/// optionally with a session token header. Also returns the
/// `Sec-WebSocket-Key` that was sent.
pub async fn connect(
    addr: SocketAddr,
    host: &str,
    token: Option<&str>,
) -> (Result<(Ws, WsResponse), WsError>, String) {
    let mut req = format!("ws://127.0.0.1:{}/chat?room=1", addr.port())
        .into_client_request()
        .unwrap();
    let headers = req.headers_mut();
    headers.insert("host", HeaderValue::from_str(host).unwrap());
    if let Some(token) = token {
        headers.insert("coder-session-token", HeaderValue::from_str(token).unwrap());
    }
    let key = headers["sec-websocket-key"].to_str().unwrap().to_string();
    let stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    let result = within(
        "the handshake",
        tokio_tungstenite::client_async(req, stream),
    )
    .await;
    (result, key)
}

/// Sends a text and a binary message and expects both back.
pub async fn echo_round(ws: &mut Ws) {
    within("sending text", ws.send(Message::Text("hello".into())))
        .await
        .unwrap();
    let reply = within("the text echo", ws.next())
        .await
        .expect("the socket stayed open")
        .unwrap();
    assert_eq!(reply, Message::Text("hello".into()));

    let bytes = vec![0u8, 1, 2, 254, 255];
    within("sending binary", ws.send(Message::Binary(bytes.clone())))
        .await
        .unwrap();
    let reply = within("the binary echo", ws.next())
        .await
        .expect("the socket stayed open")
        .unwrap();
    assert_eq!(reply, Message::Binary(bytes));

    within("closing", ws.close(None)).await.unwrap();
}
