// Package bolt is the embedded storage backend: it implements storage.Store
// over one bbolt file (go.etcd.io/bbolt).
//
// It owns the file layout (schema.go declares every bucket and the schema
// version), the encoding of records (JSON of the storage record types), the
// group-commit writer, the event log with its retention, and the watchers
// that follow it. It imports internal/storage, bbolt and the standard
// library, nothing else; no bbolt type crosses the storage interface.
//
// # Writes
//
// Every Update is queued to one writer goroutine. The writer takes the first
// queued request, drains whatever else is already queued (without waiting,
// up to Options.MaxBatch) and runs all their functions in one bbolt
// read-write transaction, one after another, each with its own storage.Tx
// view and, if it emitted events, its own next revision. The transaction is
// committed (bbolt fsyncs on commit) before any caller is answered, so one
// fsync is shared by the whole group. If a function fails or panics, the
// transaction is rolled back and the others are run again in a fresh
// transaction: this is why the storage contract requires update functions
// to be idempotent. The failing caller gets its error at once only if its
// function ran first in the transaction; otherwise it may have failed on
// the uncommitted writes of those before it, so it runs again alone after
// they commit and gets the answer it gives then (never an error computed
// from writes that may not commit). An update function must not
// call Update itself (the writer would wait for itself).
//
// # Events and watchers
//
// The events of one function become one storage.Change stored under its
// revision (8-byte big-endian key) in the same transaction as the records.
// Each commit also deletes, in bounded chunks, the changes older than
// Options.RetainRevisions. After a commit the writer publishes the new
// changes to the store's storage.Ring (Options.WatchCache changes), which
// wakes the watchers by closing a channel (a broadcast that never blocks).
// A watcher reads in pages: from the ring when it follows the head,
// otherwise from the events bucket in short read transactions, so a slow
// watcher costs the writer nothing. Changes taken from the ring are decoded
// once and shared by every watcher, which is why watchers must treat a
// Change as read-only.
//
// # Reading
//
// View runs in a bbolt read transaction. Iterators are only valid inside
// the View or Update function that produced them; inside an Update they
// reposition their cursor after every record they yield, so the function
// may write (revoke the sessions it is iterating over, for example).
//
// Times are stored in UTC, so every time read back has the UTC location.
package bolt
