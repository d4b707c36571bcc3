//! One writer per process for a document every database's invocations change (the LRS slots, the
//! due-time index). The handler runs up to sixteen invocations in one process, and when each read,
//! changed and wrote such a document with If-Match on its own, a wave of starts mostly raced
//! itself: three to four attempts a change. Here the process's changes queue, and whoever holds the
//! writer lock applies every change queued so far to the document and writes it once (a group
//! commit); each caller gets its own answer as computed in the document that was written.
//!
//! The document is kept as last read or written, with its ETag, so a change is one conditional PUT.
//! Other processes stay safe as before: a write is always conditional, and a lost race re-reads and
//! applies the batch again. An answer that writes nothing (a slot refused, a release of nothing) is
//! never given from the kept copy: the document is read afresh first, as it was before.

use std::sync::{Arc, Mutex as StdMutex};

use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, oneshot};

use super::PipelineError;
use crate::storage::{self, Precondition, StateStore};

/// How often a batch is written again after losing a race to another process.
const MAX_RETRIES: u32 = 64;

/// A document kept by [`SharedDoc`].
pub(super) trait Document: Default + Clone + DeserializeOwned + Send + 'static {
    /// Its key in the state store (no `/`, so it is never taken for a database's state).
    const KEY: &'static str;
    /// Its stored form.
    fn encode(&self) -> Vec<u8>;
}

/// A change: applies itself (again, on a retry) and says whether it changed the document.
type Apply<D> = Arc<dyn Fn(&mut D) -> bool + Send + Sync>;

/// A change waiting for a write, and where its outcome goes.
struct Pending<D> {
    apply: Apply<D>,
    done: oneshot::Sender<Result<(), Failure>>,
}

/// The document as last read or written in this process.
struct Known<D> {
    doc: D,
    /// `IfMatch` its ETag, or `IfNoneMatch` when there was none.
    precondition: Precondition,
}

/// Why a batch failed, handed to each of its callers.
#[derive(Clone)]
enum Failure {
    Storage(storage::Error),
    Corrupt(String),
}

impl Failure {
    fn into_error(self, key: &str) -> PipelineError {
        match self {
            Failure::Storage(e) => PipelineError::Storage(e),
            Failure::Corrupt(reason) => PipelineError::CorruptState {
                key: key.into(),
                reason,
            },
        }
    }
}

/// The process's writer of document `D` (shared by the pipeline's clones).
pub(super) struct SharedDoc<D> {
    store: Arc<dyn StateStore>,
    /// Changes queued for the next write.
    queue: StdMutex<Vec<Pending<D>>>,
    /// Held while writing; holds the document as last read or written (`None`: read it first).
    writer: Mutex<Option<Known<D>>>,
}

impl<D: Document> SharedDoc<D> {
    pub fn new(store: Arc<dyn StateStore>) -> Self {
        SharedDoc {
            store,
            queue: StdMutex::new(Vec::new()),
            writer: Mutex::new(None),
        }
    }

    /// The document as stored now (read afresh, and kept); `None` if there is none.
    pub async fn read(&self) -> Result<Option<D>, PipelineError> {
        let mut known = self.writer.lock().await;
        *known = None;
        let (doc, precondition) = self.load().await.map_err(|f| f.into_error(D::KEY))?;
        let answer = match &precondition {
            Precondition::IfMatch(_) => Some(doc.clone()),
            Precondition::IfNoneMatch => None,
        };
        *known = Some(Known { doc, precondition });
        Ok(answer)
    }

    /// Applies `change` (which says whether it changed the document, and gives an answer) in the
    /// next write, and returns its answer as computed in the document written.
    pub async fn modify<R: Send + 'static>(
        &self,
        change: impl Fn(&mut D) -> (bool, R) + Send + Sync + 'static,
    ) -> Result<R, PipelineError> {
        let answer = Arc::new(StdMutex::new(None));
        let apply: Apply<D> = {
            let answer = answer.clone();
            Arc::new(move |doc: &mut D| {
                let (changed, r) = change(doc);
                *answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                changed
            })
        };
        loop {
            let (done, mut outcome) = oneshot::channel();
            self.queue().push(Pending {
                apply: apply.clone(),
                done,
            });
            let mut known = self.writer.lock().await;
            let written = match outcome.try_recv() {
                Ok(written) => Some(written),
                Err(oneshot::error::TryRecvError::Closed) => None,
                Err(oneshot::error::TryRecvError::Empty) => {
                    // Not written yet: this caller writes every change queued so far, its own too.
                    let batch = std::mem::take(&mut *self.queue());
                    let result = self.write(&mut known, &batch).await;
                    for pending in batch {
                        let _ = pending.done.send(result.clone());
                    }
                    drop(known);
                    outcome.await.ok()
                }
            };
            match written {
                Some(Ok(())) => {
                    let answer = answer.lock().unwrap_or_else(|e| e.into_inner()).take();
                    return Ok(answer.expect("a written change was applied"));
                }
                Some(Err(failure)) => return Err(failure.into_error(D::KEY)),
                // The invocation writing it was cancelled mid-write: queue it again.
                None => continue,
            }
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Pending<D>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `batch` to the document and writes it, re-reading after a lost race. `known` is
    /// emptied first, so a write cancelled midway leaves the next one to read afresh.
    async fn write(
        &self,
        known: &mut Option<Known<D>>,
        batch: &[Pending<D>],
    ) -> Result<(), Failure> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (mut doc, precondition, fresh) = match known.take() {
                Some(Known { doc, precondition }) => (doc, precondition, false),
                None => {
                    let (doc, precondition) = self.load().await?;
                    (doc, precondition, true)
                }
            };
            let mut changed = false;
            for pending in batch {
                changed |= (pending.apply)(&mut doc);
            }
            if !changed {
                if fresh {
                    *known = Some(Known { doc, precondition });
                    return Ok(());
                }
                // Nothing to write, decided on the kept copy: decide again on the stored one.
                continue;
            }
            match self.store.put(D::KEY, doc.encode(), precondition).await {
                Ok(etag) => {
                    *known = Some(Known {
                        doc,
                        precondition: Precondition::IfMatch(etag),
                    });
                    return Ok(());
                }
                Err(storage::Error::Conflict { .. }) if attempt < MAX_RETRIES => {
                    // Another process wrote it: re-read (`known` is empty) and apply again.
                    let jitter = rand::random::<u64>() % (3 * u64::from(attempt.min(10)) + 1);
                    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                }
                Err(e) => return Err(Failure::Storage(e)),
            }
        }
    }

    async fn load(&self) -> Result<(D, Precondition), Failure> {
        match self.store.get(D::KEY).await.map_err(Failure::Storage)? {
            None => Ok((D::default(), Precondition::IfNoneMatch)),
            Some((bytes, etag)) => {
                let doc =
                    serde_json::from_slice(&bytes).map_err(|e| Failure::Corrupt(e.to_string()))?;
                Ok((doc, Precondition::IfMatch(etag)))
            }
        }
    }

    /// How many changes wait for a write.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queue().len()
    }
}

/// Test helpers: the folder store with a gate on its writes, and call counts.
#[cfg(test)]
pub(super) mod testing {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use tokio::sync::Semaphore;

    use super::*;
    use crate::storage::ETag;
    use crate::storage::folder::FolderStateStore;

    /// The real folder store; while gated, each write first waits for a permit ([`GatedStore::open`]),
    /// so a test can hold a write in flight while others queue.
    pub struct GatedStore {
        inner: FolderStateStore,
        gated: AtomicBool,
        gate: Semaphore,
        waiting: AtomicUsize,
        gets: AtomicUsize,
        puts: AtomicUsize,
        dir: Arc<tempfile::TempDir>,
    }

    impl GatedStore {
        /// Over a new temporary folder.
        pub fn new(gated: bool) -> Arc<Self> {
            let dir = tempfile::tempdir().expect("temp dir");
            Self::over(Arc::new(dir), gated)
        }

        /// Another store over the same folder (another process's view).
        pub fn sibling(&self, gated: bool) -> Arc<Self> {
            Self::over(self.dir.clone(), gated)
        }

        fn over(dir: Arc<tempfile::TempDir>, gated: bool) -> Arc<Self> {
            Arc::new(GatedStore {
                inner: FolderStateStore::new(dir.path()).expect("store"),
                gated: AtomicBool::new(gated),
                gate: Semaphore::new(0),
                waiting: AtomicUsize::new(0),
                gets: AtomicUsize::new(0),
                puts: AtomicUsize::new(0),
                dir,
            })
        }

        /// From now on, writes wait for permits.
        pub fn close(&self) {
            self.gated.store(true, Ordering::SeqCst);
        }

        /// Lets `n` more writes through.
        pub fn open(&self, n: usize) {
            self.gate.add_permits(n);
        }

        /// Writes waiting at the gate.
        pub fn waiting(&self) -> usize {
            self.waiting.load(Ordering::SeqCst)
        }

        /// Writes made.
        pub fn puts(&self) -> usize {
            self.puts.load(Ordering::SeqCst)
        }

        /// Reads made.
        pub fn gets(&self) -> usize {
            self.gets.load(Ordering::SeqCst)
        }
    }

    /// Counts a write out of the gate's waiters, also when it is cancelled there.
    struct Waiting<'a>(&'a AtomicUsize);

    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[async_trait::async_trait]
    impl StateStore for GatedStore {
        async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, ETag)>, storage::Error> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            self.inner.get(key).await
        }

        async fn put(
            &self,
            key: &str,
            bytes: Vec<u8>,
            precondition: Precondition,
        ) -> Result<ETag, storage::Error> {
            if self.gated.load(Ordering::SeqCst) {
                self.waiting.fetch_add(1, Ordering::SeqCst);
                let _waiting = Waiting(&self.waiting);
                self.gate.acquire().await.expect("never closed").forget();
            }
            self.puts.fetch_add(1, Ordering::SeqCst);
            self.inner.put(key, bytes, precondition).await
        }

        async fn list(&self, prefix: &str) -> Result<Vec<String>, storage::Error> {
            self.inner.list(prefix).await
        }
    }

    /// Waits (10 s at most) until `done` holds.
    pub async fn until(what: &str, done: impl Fn() -> bool) {
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while !done() {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("waited 10 s for {what}"));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    use super::testing::{GatedStore, until};
    use super::*;

    /// A set of names, as a shared document.
    #[derive(Debug, Default, Clone, Serialize, Deserialize)]
    struct Names(BTreeSet<String>);

    impl Document for Names {
        const KEY: &'static str = "test-names.json";
        fn encode(&self) -> Vec<u8> {
            serde_json::to_vec(self).expect("serialises")
        }
    }

    fn add(doc: &Arc<SharedDoc<Names>>, name: &str) -> tokio::task::JoinHandle<bool> {
        let (doc, name) = (doc.clone(), name.to_owned());
        tokio::spawn(async move {
            doc.modify(move |names: &mut Names| {
                let added = names.0.insert(name.clone());
                (added, added)
            })
            .await
            .expect("written")
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn changes_queued_during_a_write_go_out_together_in_the_next() {
        let store = GatedStore::new(true);
        let doc = Arc::new(SharedDoc::<Names>::new(store.clone()));
        let first = add(&doc, "a");
        // `a`'s write waits at the gate; twenty more changes queue behind it.
        until("the first change at the gate", || store.gets() == 1).await;
        let rest: Vec<_> = (0..20).map(|i| add(&doc, &format!("n{i}"))).collect();
        until("changes queued", || doc.queued() == 20).await;
        store.open(1 << 20);
        assert!(first.await.expect("joined"));
        for r in rest {
            assert!(r.await.expect("joined"));
        }
        assert_eq!(store.puts(), 2, "one write for `a`, one for the twenty");
        assert_eq!(
            store.gets(),
            1,
            "the second write started from the kept copy"
        );
        let names = doc.read().await.expect("read").expect("written");
        assert_eq!(names.0.len(), 21);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_change_whose_writer_was_cancelled_is_written_by_its_own_caller() {
        let store = GatedStore::new(true);
        let doc = Arc::new(SharedDoc::<Names>::new(store.clone()));
        let first = add(&doc, "a");
        until("the first change at the gate", || store.gets() == 1).await;
        let second = add(&doc, "b");
        until("changes queued", || doc.queued() == 1).await;
        let third = add(&doc, "c");
        until("changes queued", || doc.queued() == 2).await;
        // `a` is written alone; `b` takes the lock and writes `b` and `c`, and is cancelled at the
        // gate: `c` must be queued again and written, not lost or left waiting.
        store.open(1);
        assert!(first.await.expect("joined"));
        until("the second batch at the gate", || {
            doc.queued() == 0 && store.waiting() == 1
        })
        .await;
        second.abort();
        assert!(second.await.is_err(), "cancelled");
        store.open(1 << 20);
        let third = tokio::time::timeout(Duration::from_secs(10), third)
            .await
            .expect("not left waiting");
        assert!(third.expect("joined"));
        let names = doc.read().await.expect("read").expect("written");
        assert_eq!(names.0, BTreeSet::from(["a".to_owned(), "c".to_owned()]));
    }

    #[tokio::test]
    async fn an_answer_that_writes_nothing_is_given_on_the_stored_document() {
        let store = GatedStore::new(false);
        let ours = SharedDoc::<Names>::new(store.clone());
        let theirs = SharedDoc::<Names>::new(store.sibling(false));
        assert!(add_now(&ours, "a").await);
        // Another process removes `a`: our kept copy still has it.
        theirs
            .modify(|names: &mut Names| (names.0.remove("a"), ()))
            .await
            .expect("removed");
        assert!(
            add_now(&ours, "a").await,
            "added again, not refused on the kept copy"
        );
        // And a write on the kept copy that lost the race is applied again on the stored one.
        assert!(add_now(&theirs, "b").await);
        assert!(add_now(&ours, "c").await);
        let names = theirs.read().await.expect("read").expect("written");
        assert_eq!(names.0.len(), 3, "{names:?}");
    }

    async fn add_now(doc: &SharedDoc<Names>, name: &str) -> bool {
        let name = name.to_owned();
        doc.modify(move |names: &mut Names| {
            let added = names.0.insert(name.clone());
            (added, added)
        })
        .await
        .expect("written")
    }

    #[tokio::test]
    async fn an_unreadable_document_fails_every_caller_clearly() {
        let store = GatedStore::new(false);
        store
            .put(Names::KEY, b"{not json".to_vec(), Precondition::IfNoneMatch)
            .await
            .expect("put");
        let doc = SharedDoc::<Names>::new(store);
        let err = doc
            .modify(|names: &mut Names| (names.0.insert("a".into()), ()))
            .await
            .expect_err("unreadable");
        assert!(
            matches!(&err, PipelineError::CorruptState { key, .. } if key == Names::KEY),
            "{err}"
        );
    }
}
