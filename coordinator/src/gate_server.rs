//! The `cutover.v1.GateService` gRPC service, written by hand around a codec
//! that writes pre-encoded frames: every session of a pipeline shares the
//! bytes encoded once per epoch (see `published`).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes};
use cutover_proto::v1;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Status, Streaming};
use tracing::Instrument;

use crate::admission::{Admission, caller_key};
use crate::registry::Coordinator;
use crate::session;

/// Initial size of a session's encode and decode buffers (tonic's default
/// is 8 KiB each). Gate frames are a few hundred bytes; the buffers grow
/// for a larger one. Small buffers keep an idle session cheap.
const CODEC_BUFFER: usize = 1024;

/// Frames queued per session before the session stops pulling updates (and
/// starts coalescing them).
const OUTBOUND_QUEUE: usize = 4;

/// The gate service.
#[derive(Clone)]
pub struct GateServer {
    coordinator: Coordinator,
    admission: Arc<Admission>,
    max_message_bytes: usize,
}

impl GateServer {
    /// The gate service of `coordinator`, its sessions counted in
    /// `admission`.
    pub fn new(coordinator: Coordinator, admission: Arc<Admission>) -> Self {
        let max_message_bytes = coordinator.config().max_message_bytes;
        GateServer {
            coordinator,
            admission,
            max_message_bytes,
        }
    }
}

impl NamedService for GateServer {
    const NAME: &'static str = "cutover.v1.GateService";
}

impl<B> Service<http::Request<B>> for GateServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != "/cutover.v1.GateService/Session" {
            return Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) });
        }
        let method = SessionMethod(self.coordinator.clone(), self.admission.clone());
        let max = self.max_message_bytes;
        Box::pin(async move {
            let mut grpc =
                Grpc::new(FrameCodec).apply_max_message_size_config(Some(max), Some(max));
            Ok(grpc.streaming(method, request).await)
        })
    }
}

struct SessionMethod(Coordinator, Arc<Admission>);

impl StreamingService<v1::ClientMessage> for SessionMethod {
    type Response = Bytes;
    type ResponseStream = ReceiverStream<Result<Bytes, Status>>;
    type Future = BoxFuture<tonic::Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: tonic::Request<Streaming<v1::ClientMessage>>) -> Self::Future {
        let coordinator = self.0.clone();
        let admission = self.1.clone();
        Box::pin(async move {
            let peer = request.remote_addr();
            // Refused at once without an identity when a policy is in
            // force (no gate could register anyway).
            let identity =
                crate::auth::admitted_identity(coordinator.config(), &admission, &request).await?;
            let slot = admission.open_session(caller_key(identity.as_deref(), peer))?;
            let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
            let span = tracing::info_span!("session", peer = ?peer, identity = ?identity);
            let session = session::run(coordinator, identity, request.into_inner(), tx);
            tokio::spawn(
                async move {
                    session.await;
                    drop(slot);
                }
                .instrument(span),
            );
            Ok(tonic::Response::new(ReceiverStream::new(rx)))
        })
    }
}

/// Encodes pre-encoded frames as they are; decodes client messages.
#[derive(Clone, Copy, Default)]
struct FrameCodec;

impl Codec for FrameCodec {
    type Encode = Bytes;
    type Decode = v1::ClientMessage;
    type Encoder = FrameCodec;
    type Decoder = FrameCodec;

    fn encoder(&mut self) -> Self::Encoder {
        FrameCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        FrameCodec
    }
}

impl Encoder for FrameCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(CODEC_BUFFER, 32 * 1024)
    }
}

impl Decoder for FrameCodec {
    type Item = v1::ClientMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<v1::ClientMessage>, Status> {
        v1::ClientMessage::decode(src)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("malformed client message: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(CODEC_BUFFER, 32 * 1024)
    }
}
