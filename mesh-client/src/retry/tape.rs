//! Replaying a streaming request body: the first attempt streams it while a copy of what was
//! read is kept (up to the replay limit), and a retry replays that copy, then goes on reading
//! the rest from the downstream.
//!
//! gRPC requests carry no `content-length`, so [`replay::buffer`](super::replay::buffer)
//! cannot buffer them up front without waiting for the whole stream (which a streaming call may
//! never end before it hears back). Recording as the attempt reads costs no wait: a unary call's
//! body is usually whole by the time its answer arrives, and a connect failure leaves it unread.
//! A body larger than the limit stops being recorded and is then not replayable. Only the
//! latest attempt's body reads: an earlier attempt's connection still polling its body gets
//! end-of-stream, so two attempts never split the stream between them.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
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
}

impl Tape {
    /// A tape over `body`, recording at most `limit` bytes.
    pub(super) fn new(body: BoxBody, limit: u64) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                rest: Some(body),
                recorded: Recording::default(),
                recorded_len: 0,
                trailers: None,
                ended: false,
                broken: false,
                generation: 0,
                waiting: None,
            }),
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
        http_body_util::BodyExt::boxed_unsync(Player {
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
        let Ok(mut s) = tape.state.lock() else {
            return Poll::Ready(Some(Err("request body recording poisoned".into())));
        };
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
            let polled = Pin::new(&mut *rest).poll_frame(cx);
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
                    s.ended = true;
                    s.rest = None;
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
                        s.ended = true;
                        s.rest = None;
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
                                s.ended = true;
                                s.rest = None;
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
mod tests {
    use std::collections::VecDeque;

    use http_body_util::BodyExt;

    use super::*;

    fn chunks(parts: &'static [&'static str]) -> BoxBody {
        let frames = parts
            .iter()
            .map(|p| Ok::<_, BoxError>(Frame::data(Bytes::from_static(p.as_bytes()))));
        http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
    }

    /// A body as hyper's HTTP/2 `Incoming` is one: a client's DATA frames, then the empty
    /// DATA frame with END_STREAM that most clients end with (tonic's does) as an empty chunk,
    /// and only after that chunk `is_end_stream`.
    struct H2Like {
        frames: VecDeque<&'static str>,
    }

    impl Body for H2Like {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(
                self.frames
                    .pop_front()
                    .map(|f| Ok(Frame::data(Bytes::from_static(f.as_bytes())))),
            )
        }

        fn is_end_stream(&self) -> bool {
            self.frames.is_empty()
        }
    }

    /// Every frame an attempt's body yields, and whether it said it had ended after each.
    async fn frames(mut body: BoxBody) -> Vec<(Bytes, bool)> {
        let mut seen = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            seen.push((data, body.is_end_stream()));
        }
        seen
    }

    #[tokio::test]
    async fn the_empty_chunk_ending_an_h2_body_is_not_sent_on() {
        // The bug this guards: each attempt sent that empty chunk as an empty DATA frame
        // without END_STREAM; h2 servers count those per connection and send GOAWAY
        // (ENHANCE_YOUR_CALM, too_many_data_frames) after 100, resetting the calls in flight.
        let tape = Tape::new(
            H2Like {
                frames: ["msg", ""].into(),
            }
            .boxed_unsync(),
            64,
        );
        assert_eq!(frames(tape.body()).await, [(Bytes::from("msg"), false)]);
        // The replay knows the end: END_STREAM goes out with the last chunk.
        let replay = tape.body();
        assert!(!replay.is_end_stream());
        assert_eq!(frames(replay).await, [(Bytes::from("msg"), true)]);
    }

    #[tokio::test]
    async fn an_end_the_downstream_reports_with_its_last_chunk_ends_the_attempt_body() {
        let tape = Tape::new(
            H2Like {
                frames: ["a", "b"].into(),
            }
            .boxed_unsync(),
            64,
        );
        assert_eq!(
            frames(tape.body()).await,
            [(Bytes::from("a"), false), (Bytes::from("b"), true)]
        );
        // A body the downstream had already ended when it was recorded: nothing to send but
        // the recording.
        let tape = Tape::new(
            H2Like {
                frames: [""].into(),
            }
            .boxed_unsync(),
            64,
        );
        assert!(frames(tape.body()).await.is_empty());
        assert!(tape.body().is_end_stream());
    }

    #[tokio::test]
    async fn a_retry_replays_what_was_read_then_the_rest() {
        let tape = Tape::new(chunks(&["ab", "cd", "ef"]), 64);
        let mut first = tape.body();
        let frame = first.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "ab");
        assert!(tape.replayable());
        let second = tape.body();
        // The first attempt's body is over once a second one exists.
        assert!(first.frame().await.is_none());
        assert_eq!(second.collect().await.unwrap().to_bytes(), "abcdef");
        assert_eq!(tape.body().collect().await.unwrap().to_bytes(), "abcdef");
    }

    #[tokio::test]
    async fn an_unread_body_is_replayable_and_a_large_one_is_not() {
        let tape = Tape::new(chunks(&["x"]), 64);
        drop(tape.body());
        assert_eq!(tape.body().collect().await.unwrap().to_bytes(), "x");

        let tape = Tape::new(chunks(&["0123456789", "0123456789"]), 15);
        assert_eq!(
            tape.body().collect().await.unwrap().to_bytes(),
            "01234567890123456789"
        );
        assert!(!tape.replayable());
    }
}
