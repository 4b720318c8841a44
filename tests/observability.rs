//! Background work runs inside a `tracing` span named after its node, so a subscriber can
//! tell which node logged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use brooklet::Source;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records, for every event, the `name` field of the innermost entered span.
#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    names: Mutex<HashMap<u64, String>>,
    stack: Mutex<Vec<u64>>,
    events: Mutex<Vec<Option<String>>>,
}

struct NameField(Option<String>);

impl Visit for NameField {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "name" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let mut name = NameField(None);
        span.record(&mut name);
        if let Some(n) = name.0 {
            self.names.lock().unwrap().insert(id, n);
        }
        Id::from_u64(id)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {
        let current = self.stack.lock().unwrap().last().copied();
        let name = current.and_then(|id| self.names.lock().unwrap().get(&id).cloned());
        self.events.lock().unwrap().push(name);
    }

    fn enter(&self, span: &Id) {
        self.stack.lock().unwrap().push(span.into_u64());
    }

    fn exit(&self, _: &Id) {
        self.stack.lock().unwrap().pop();
    }
}

#[test]
fn a_buffer_task_logs_inside_a_span_named_after_its_node() {
    let recorder = std::sync::Arc::new(Recorder::default());
    let dispatch = tracing::Dispatch::from(recorder.clone());
    tracing::dispatcher::with_default(&dispatch, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let source = Source::new();
            let _out = source
                .buffer(4)
                .named("ingest")
                .map(|x: u32| {
                    tracing::info!(x, "seen downstream of the buffer");
                    x
                })
                .sink(|_| ());
            source.emit(1).await.unwrap();
            source.close().await.unwrap();
        });
    });
    let events = recorder.events.lock().unwrap().clone();
    assert!(!events.is_empty(), "no event recorded");
    assert!(
        events.contains(&Some("ingest".to_string())),
        "events were in spans {events:?}"
    );
}
