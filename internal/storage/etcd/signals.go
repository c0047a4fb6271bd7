package etcd

import (
	"iter"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// The reads of the records of shared signals; their writes are
// storage.Writes (keys: recordKey, the hex of the record's key).

const (
	// bucketSignalStreams: <prefix>/sigstreams/<hex of the stream ID> ->
	// JSON storage.SignalStream.
	bucketSignalStreams = "sigstreams"
	// bucketSignalTransmitters: <prefix>/sigtransmitters/<hex of the
	// transmitter ID> -> JSON storage.SignalTransmitter.
	bucketSignalTransmitters = "sigtransmitters"
	// bucketReceivedSETs: <prefix>/sigreceived/<hex of
	// storage.ReceivedSET.Key()> -> JSON storage.ReceivedSET.
	bucketReceivedSETs = "sigreceived"
)

func (t *txn) SignalStream(id string) (storage.SignalStream, error) {
	return storage.Get[storage.SignalStream](t, storage.TableSignalStreams, id)
}

func (t *txn) SignalStreams() iter.Seq2[storage.SignalStream, error] {
	return scanRecords(t, bucketSignalStreams, "signal stream", "", func(*storage.SignalStream) bool { return true })
}

func (t *txn) SignalTransmitter(id string) (storage.SignalTransmitter, error) {
	return storage.Get[storage.SignalTransmitter](t, storage.TableSignalTransmitters, id)
}

func (t *txn) SignalTransmitters() iter.Seq2[storage.SignalTransmitter, error] {
	return scanRecords(t, bucketSignalTransmitters, "signal transmitter", "", func(*storage.SignalTransmitter) bool { return true })
}

func (t *txn) ReceivedSET(key string) (storage.ReceivedSET, error) {
	return storage.Get[storage.ReceivedSET](t, storage.TableReceivedSETs, key)
}

func (t *txn) ReceivedSETs() iter.Seq2[storage.ReceivedSET, error] {
	return scanRecords(t, bucketReceivedSETs, "received SET", "", func(*storage.ReceivedSET) bool { return true })
}
