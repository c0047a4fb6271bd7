// Package fleet is what one authority replica knows of the mirrors that
// follow it, and of the other replicas' mirrors: the domain logic behind
// the progress protocol (docs/design.md section 3), kept apart from gRPC
// so that it is tested without it.
//
// It owns:
//
//   - The registry of one replica's Watch subscribers: who they are, the
//     revision offered to each (a progress report may not exceed it,
//     ErrRevisionNotSent), the revision each reporting mirror has applied,
//     and whether it is still loading its snapshot.
//   - The deadline of a reporting mirror: one silent longer than the
//     progress timeout is cut (ErrNoProgress); while it loads its snapshot
//     the longer load timeout applies (ErrLoadTimeout).
//   - The wait of a write (Fleet.Wait) until every reporting mirror known
//     at the write has applied it, woken by reports and departures, never
//     by a timer.
//   - With a store shared by several replicas (storage.Presence, etcd):
//     the summary of this replica's mirrors that it publishes, and the
//     view of the others' summaries that waits count.
//
// It imports internal/storage (Presence) and the standard library only;
// the server converts its results to and from the API.
package fleet
