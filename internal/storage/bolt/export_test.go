package bolt

import "github.com/portcullis-dev/portcullis/internal/storage"

// Internals the external tests look at.

// Commits is how many bbolt transactions the writer committed.
func (s *Store) Commits() int64 { return s.stats.commits.Load() }

// Attempts is how many bbolt transactions the writer began.
func (s *Store) Attempts() int64 { return s.stats.attempts.Load() }

// QueueLen is how many Updates wait for the writer.
func (s *Store) QueueLen() int { return len(s.reqs) }

const RetentionChunk = retentionChunk

var (
	BucketMeta           = bucketMeta
	BucketSessionsByUser = bucketSessionsByUser
	MetaSchemaVersion    = metaSchemaVersion
	ErrCorrupt           = errCorrupt
	ErrInvalid           = storage.ErrInvalidRecord
	ErrTxDone            = errTxDone
)

// IndexKey is the index key of id under parts.
func IndexKey(id string, parts ...string) []byte { return append(indexPrefix(parts...), id...) }
