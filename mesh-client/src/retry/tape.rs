//! Replaying a streaming request body: the first attempt streams it while a copy of what was
//! read is kept (up to the replay limit), and a retry replays that copy, then goes on reading
//! the rest from the downstream.
//!
//! gRPC requests carry no `content-length`, so [`replay::buffer`](super::replay::buffer)
//! cannot buffer them up front without waiting for the whole stream (which a streaming call may
//! never end before it hears back). [`read_ready`] first takes what the body has ready without
//! waiting: a unary call's one message is there when the call is made (tonic encodes it
//! before it sends), so such a body is whole at once and is replayed as plain bytes, with no
//! tape. Otherwise the tape keeps what was read, and recording goes on as the attempt reads,
//! which costs no wait either; a connect failure leaves the body unread. A body larger than the
//! limit stops being recorded and is then not replayable. Only the latest attempt's body reads:
//! an earlier attempt's connection still polling its body gets end-of-stream, so two attempts
//! never split the stream between them.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::BoxError;
use crate::body::{self, BoxBody};

/// The recording shared by every attempt's body.
pub(super) struct Tape {
    state: Mutex<State>,
    limit: u64,
}

struct State {
    /// The downstream's body, from where reading stopped.
    rest: Option<BoxBody>,
    recorded: Recording,
    recorded_len: u64,
    trailers: Option<HeaderMap>,
    /// The downstream body ended (trailers, if any, recorded).
    ended: bool,
    /// More than the limit was read, or the body failed: not replayable any more.
    broken: bool,
    /// The attempt whose body may read.
    generation: u64,
    /// The waker of the body waiting on the downstream: woken when a newer attempt takes over,
    /// so that the old attempt's connection sees its body end (the downstream body keeps only
    /// its latest reader's waker).
    waiting: Option<std::task::Waker>,
    /// What [`read_ready`] read but did not record (a chunk past the limit, a failure, a frame
    /// of another kind): the first attempt's body yields it after the recording.
    held: Option<Result<Frame<Bytes>, BoxError>>,
}

/// What a body had ready when its call was made ([`read_ready`]).
pub(super) enum Ready {
    /// The whole body, within the limit: it is replayed as bytes.
    Whole(Bytes),
    /// The body goes on (or cannot be replayed as bytes): a tape holding what was read.
    Tape(Arc<Tape>),
}

/// At most this many frames are read ahead (a unary call's body is one, or two with the empty
/// chunk that ends an HTTP/2 stream).
const READY_FRAMES: usize = 16;

/// Reads what `body` has ready without waiting, recording at most `limit` bytes (see the
/// [module docs](self)). The body is polled with a no-op waker: an attempt's body that reads
/// on from the tape registers its own.
pub(super) fn read_ready(body: BoxBody, limit: u64) -> Ready {
    let mut s = State::new(body);
    let mut cx = Context::from_waker(Waker::noop());
    // Bounded: a body that yields empty chunks without end is left to the attempt's reads.
    for _ in 0..READY_FRAMES {
        let Some(rest) = s.rest.as_mut() else { break };
        let polled = Pin::new(&mut *rest).poll_frame(&mut cx);
        // As an attempt's body does (see `Player`): the end comes from the body itself.
        let rest_ended = rest.is_end_stream();
        match polled {
            Poll::Pending => break,
            Poll::Ready(None) => s.end(),
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) if s.recorded_len + data.len() as u64 <= limit => {
                    s.recorded_len += data.len() as u64;
                    if !data.is_empty() {
                        s.recorded.push(data);
                    }
                    if rest_ended {
                        s.end();
                    }
                }
                Ok(data) => {
                    s.held = Some(Ok(Frame::data(data)));
                    break;
                }
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => {
                        s.trailers = Some(trailers);
                        s.end();
                    }
                    Err(frame) => {
                        s.held = Some(Ok(frame));
                        break;
                    }
                },
            },
            Poll::Ready(Some(Err(e))) => {
                s.held = Some(Err(e));
                break;
            }
        }
    }
    if s.ended && s.trailers.is_none() {
        return Ready::Whole(s.recorded.into_bytes());
    }
    Ready::Tape(Arc::new(Tape {
        state: Mutex::new(s),
        limit,
    }))
}

impl State {
    fn new(body: BoxBody) -> Self {
        Self {
            rest: Some(body),
            recorded: Recording::default(),
            recorded_len: 0,
            trailers: None,
            ended: false,
            broken: false,
            generation: 0,
            waiting: None,
            held: None,
        }
    }

    /// The downstream body is over.
    fn end(&mut self) {
        self.ended = true;
        self.rest = None;
    }
}

impl Tape {
    /// A tape over `body`, recording at most `limit` bytes, that has read nothing yet.
    #[cfg(test)]
    pub(super) fn new(body: BoxBody, limit: u64) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::new(body)),
            limit,
        })
    }

    /// Whether a new attempt can be given the whole body again.
    pub(super) fn replayable(&self) -> bool {
        self.state.lock().map(|s| !s.broken).unwrap_or(false)
    }

    /// The body of a new attempt: the recording from its start, then the rest. Earlier
    /// attempts' bodies end.
    pub(super) fn body(self: &Arc<Self>) -> BoxBody {
        let generation = match self.state.lock() {
            Ok(mut s) => {
                s.generation += 1;
                if let Some(waker) = s.waiting.take() {
                    waker.wake();
                }
                s.generation
            }
            Err(_) => return body::empty(),
        };
        BoxBody::wrapping(Player {
            tape: Arc::clone(self),
            generation,
            position: 0,
            done: false,
        })
    }
}

/// The chunks read so far. A unary call's body is one chunk: it is kept inline, so recording it
/// allocates nothing (a `VecDeque` cost an allocation per call).
#[derive(Default)]
struct Recording {
    first: Option<Bytes>,
    more: Vec<Bytes>,
}

impl Recording {
    fn get(&self, index: usize) -> Option<&Bytes> {
        match index {
            0 => self.first.as_ref(),
            i => self.more.get(i - 1),
        }
    }

    fn push(&mut self, chunk: Bytes) {
        if self.first.is_none() {
            self.first = Some(chunk);
        } else {
            self.more.push(chunk);
        }
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    fn clear(&mut self) {
        self.first = None;
        self.more = Vec::new();
    }

    /// The chunks as one (copied together only when there are several).
    fn into_bytes(self) -> Bytes {
        let Some(first) = self.first else {
            return Bytes::new();
        };
        if self.more.is_empty() {
            return first;
        }
        let len = first.len() + self.more.iter().map(Bytes::len).sum::<usize>();
        let mut all = BytesMut::with_capacity(len);
        all.extend_from_slice(&first);
        for chunk in &self.more {
            all.extend_from_slice(chunk);
        }
        all.freeze()
    }
}

/// One attempt's view of the tape.
struct Player {
    tape: Arc<Tape>,
    generation: u64,
    /// How many recorded chunks this attempt has sent.
    position: usize,
    done: bool,
}

impl Body for Player {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let tape = Arc::clone(&self.tape);
        let Ok(mut guard) = tape.state.lock() else {
            return Poll::Ready(Some(Err("request body recording poisoned".into())));
        };
        let s = &mut *guard;
        if s.generation != self.generation {
            // A newer attempt owns the body now.
            self.done = true;
            return Poll::Ready(None);
        }
        if !s.broken
            && let Some(chunk) = s.recorded.get(self.position)
        {
            let chunk = chunk.clone();
            self.position += 1;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if s.ended {
            self.done = true;
            return Poll::Ready(s.trailers.clone().map(|t| Ok(Frame::trailers(t))));
        }
        loop {
            let Some(rest) = s.rest.as_mut() else {
                self.done = true;
                return Poll::Ready(None);
            };
            // What `read_ready` read but did not record comes first, taken in as if just read.
            let polled = match s.held.take() {
                Some(held) => Poll::Ready(Some(held)),
                None => Pin::new(&mut *rest).poll_frame(cx),
            };
            // hyper's h2 body yields the empty DATA frame that ends a stream as an empty chunk,
            // and only then says it has ended: take the end from the body itself, so the
            // upstream gets END_STREAM on the last chunk rather than an empty non-final DATA
            // frame per call (h2 servers allow a connection only 100 of those, then GOAWAY).
            let rest_ended = rest.is_end_stream();
            match polled {
                Poll::Pending => {
                    s.waiting = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Poll::Ready(None) => {
                    s.end();
                    self.done = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => {
                    s.broken = true;
                    s.rest = None;
                    self.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if rest_ended {
                        s.end();
                    }
                    let frame = match frame.into_data() {
                        // An empty chunk carries nothing: neither sent nor recorded.
                        Ok(data) if data.is_empty() => continue,
                        Ok(data) => {
                            if !s.broken {
                                s.recorded_len += data.len() as u64;
                                if s.recorded_len > tape.limit {
                                    s.broken = true;
                                    s.recorded.clear();
                                } else {
                                    s.recorded.push(data.clone());
                                    self.position += 1;
                                }
                            }
                            Frame::data(data)
                        }
                        Err(frame) => {
                            if let Some(t) = frame.trailers_ref() {
                                s.trailers = Some(t.clone());
                                s.end();
                                self.done = true;
                            }
                            frame
                        }
                    };
                    return Poll::Ready(Some(Ok(frame)));
                }
            }
        }
    }

    /// True once nothing but the end is left: the recording replayed and the downstream ended
    /// without trailers (so the last chunk goes out with END_STREAM), or a newer attempt took
    /// over.
    fn is_end_stream(&self) -> bool {
        if self.done {
            return true;
        }
        let Ok(s) = self.tape.state.lock() else {
            return false;
        };
        s.generation != self.generation
            || (s.ended && s.trailers.is_none() && (s.broken || self.position >= s.recorded.len()))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests;
