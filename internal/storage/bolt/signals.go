package bolt

import (
	"iter"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// The reads of the records of shared signals; their writes are
// storage.Writes.

func (t *readTx) SignalStream(id string) (storage.SignalStream, error) {
	return storage.Get[storage.SignalStream](t, storage.TableSignalStreams, id)
}

func (t *readTx) SignalStreams() iter.Seq2[storage.SignalStream, error] {
	return scan(t, scanSpec{primary: bucketSignalStreams, kind: "signal stream"}, func(*storage.SignalStream) bool { return true })
}

func (t *readTx) SignalTransmitter(id string) (storage.SignalTransmitter, error) {
	return storage.Get[storage.SignalTransmitter](t, storage.TableSignalTransmitters, id)
}

func (t *readTx) SignalTransmitters() iter.Seq2[storage.SignalTransmitter, error] {
	return scan(t, scanSpec{primary: bucketSignalTransmitters, kind: "signal transmitter"}, func(*storage.SignalTransmitter) bool { return true })
}

func (t *readTx) ReceivedSET(key string) (storage.ReceivedSET, error) {
	return storage.Get[storage.ReceivedSET](t, storage.TableReceivedSETs, key)
}

func (t *readTx) ReceivedSETs() iter.Seq2[storage.ReceivedSET, error] {
	return scan(t, scanSpec{primary: bucketReceivedSETs, kind: "received SET"}, func(*storage.ReceivedSET) bool { return true })
}
