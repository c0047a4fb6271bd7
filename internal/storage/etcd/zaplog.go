package etcd

import (
	"context"
	"errors"
	"log/slog"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap/zapcore"
)

// slogCore is a zapcore.Core that writes to a slog.Logger, so that the etcd
// client's log (zap) goes where the rest of the process logs.
type slogCore struct {
	log    *slog.Logger
	min    zapcore.Level
	fields []zapcore.Field
}

func newSlogCore(log *slog.Logger, min zapcore.Level) zapcore.Core {
	return &slogCore{log: log.With("component", "etcd-client"), min: min}
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= c.min }

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, min: c.min, fields: append(c.fields[:len(c.fields):len(c.fields)], fields...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	attrs := make([]slog.Attr, 0, len(enc.Fields))
	for k, v := range enc.Fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	level := slog.LevelInfo
	switch {
	case txnTooLarge(c.fields) || txnTooLarge(fields):
		// The client warns of every failed call, but a transaction beyond
		// the cluster's bounds is no trouble with the cluster: the store
		// returns it as storage.ErrTxnTooLarge, which callers answer by
		// splitting their work (a large ban does, every time).
		level = slog.LevelDebug
	case e.Level >= zapcore.ErrorLevel:
		level = slog.LevelError
	case e.Level >= zapcore.WarnLevel:
		level = slog.LevelWarn
	case e.Level < zapcore.InfoLevel:
		level = slog.LevelDebug
	}
	c.log.LogAttrs(context.Background(), level, e.Message, attrs...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

// txnTooLarge reports whether an entry logs etcd refusing a transaction for
// its size (--max-txn-ops or --max-request-bytes). It looks at the error
// values of the entry's error fields (zap.Error keeps the error itself in
// Field.Interface), not at their text: the client logs the gRPC status it
// got, which rpctypes.Error turns into the same rpctypes value that
// update.go matches with errors.Is when it returns storage.ErrTxnTooLarge.
func txnTooLarge(fields []zapcore.Field) bool {
	for _, f := range fields {
		if f.Type != zapcore.ErrorType {
			continue
		}
		err, ok := f.Interface.(error)
		if !ok {
			continue
		}
		for _, e := range []error{err, rpctypes.Error(err)} {
			if errors.Is(e, rpctypes.ErrTooManyOps) || errors.Is(e, rpctypes.ErrRequestTooLarge) {
				return true
			}
		}
	}
	return false
}
