use std::collections::VecDeque;

use http_body_util::BodyExt;

use super::*;

fn chunks(parts: &'static [&'static str]) -> BoxBody {
    let frames = parts
        .iter()
        .map(|p| Ok::<_, BoxError>(Frame::data(Bytes::from_static(p.as_bytes()))));
    body::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(
        frames,
    )))
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
        body::boxed(H2Like {
            frames: ["msg", ""].into(),
        }),
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
        body::boxed(H2Like {
            frames: ["a", "b"].into(),
        }),
        64,
    );
    assert_eq!(
        frames(tape.body()).await,
        [(Bytes::from("a"), false), (Bytes::from("b"), true)]
    );
    // A body the downstream had already ended when it was recorded: nothing to send but
    // the recording.
    let tape = Tape::new(
        body::boxed(H2Like {
            frames: [""].into(),
        }),
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

/// A body of `ready` chunks, then one more that comes only when `gate` sends it.
fn gated(ready: &'static [&'static str]) -> (BoxBody, tokio::sync::oneshot::Sender<Bytes>) {
    use futures_util::StreamExt as _;
    let (gate, open) = tokio::sync::oneshot::channel::<Bytes>();
    let ready = futures_util::stream::iter(
        ready
            .iter()
            .map(|p| Ok::<_, BoxError>(Frame::data(Bytes::from_static(p.as_bytes())))),
    );
    let late =
        futures_util::stream::once(
            async move { open.await.map(Frame::data).map_err(BoxError::from) },
        );
    let body = body::boxed(http_body_util::StreamBody::new(ready.chain(late)));
    (body, gate)
}

fn whole(ready: Ready) -> Option<Bytes> {
    match ready {
        Ready::Whole(bytes) => Some(bytes),
        Ready::Tape(_) => None,
    }
}

fn taped(ready: Ready) -> Arc<Tape> {
    match ready {
        Ready::Tape(tape) => tape,
        Ready::Whole(bytes) => panic!("the body was read whole: {bytes:?}"),
    }
}

#[test]
fn a_body_that_is_all_ready_is_read_whole() {
    assert_eq!(
        whole(read_ready(chunks(&["ab", "cd"]), 64)).unwrap(),
        "abcd"
    );
    // As tonic's is over h2: the message, then the empty chunk that ends the stream.
    let h2 = H2Like {
        frames: ["msg", ""].into(),
    };
    assert_eq!(whole(read_ready(body::boxed(h2), 64)).unwrap(), "msg");
    assert_eq!(whole(read_ready(chunks(&[]), 64)).unwrap(), "");
}

#[tokio::test]
async fn a_body_that_goes_on_is_taped_from_what_was_ready() {
    let (body, gate) = gated(&["ab"]);
    let tape = taped(read_ready(body, 64));
    let mut first = tape.body();
    // The chunk read ahead comes first, then the body waits for the rest.
    let frame = first.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "ab");
    gate.send(Bytes::from_static(b"cd")).unwrap();
    assert_eq!(first.collect().await.unwrap().to_bytes(), "cd");
    assert!(tape.replayable());
    assert_eq!(tape.body().collect().await.unwrap().to_bytes(), "abcd");
}

#[tokio::test]
async fn a_chunk_past_the_limit_is_sent_once_and_not_replayed() {
    let tape = taped(read_ready(chunks(&["0123456789", "0123456789"]), 15));
    assert!(tape.replayable(), "nothing was sent yet");
    assert_eq!(
        tape.body().collect().await.unwrap().to_bytes(),
        "01234567890123456789"
    );
    assert!(!tape.replayable());
}

#[tokio::test]
async fn trailers_and_failures_read_ahead_reach_the_first_attempt() {
    // Trailers cannot ride on bytes: a tape, whose every attempt sends them.
    let mut trailers = HeaderMap::new();
    trailers.insert("x-sum", http::HeaderValue::from_static("1"));
    let frames = vec![
        Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"a"))),
        Ok(Frame::trailers(trailers)),
    ];
    let body = body::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(
        frames,
    )));
    let tape = taped(read_ready(body, 64));
    for _ in 0..2 {
        let collected = tape.body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-sum"], "1");
        assert_eq!(collected.to_bytes(), "a");
    }

    let frames = vec![Err::<Frame<Bytes>, BoxError>("downstream reset".into())];
    let body = body::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(
        frames,
    )));
    let tape = taped(read_ready(body, 64));
    let error = tape.body().collect().await.unwrap_err();
    assert_eq!(error.to_string(), "downstream reset");
    assert!(!tape.replayable());
}

/// A body of empty chunks that never ends.
struct Hollow;

impl Body for Hollow {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(Some(Ok(Frame::data(Bytes::new()))))
    }
}

#[test]
fn reading_ahead_stops_on_a_body_of_endless_empty_chunks() {
    let tape = taped(read_ready(body::boxed(Hollow), 64));
    assert!(tape.replayable());
}
