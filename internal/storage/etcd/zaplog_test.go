package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// recordHandler keeps the level of every record logged through it.
type recordHandler struct {
	mu     sync.Mutex
	levels []slog.Level
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.levels = append(h.levels, r.Level)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

// TestSlogCoreLevels checks that the etcd client's warning about a
// transaction too large for the cluster is lowered to debug, recognised by
// the error value in the field (as the client logs it: a gRPC status, or
// already converted, or wrapped), while every other warning stays a warning.
func TestSlogCoreLevels(t *testing.T) {
	tooMany := status.Error(codes.InvalidArgument, rpctypes.ErrTooManyOps.Error())
	cases := []struct {
		name   string
		level  zapcore.Level
		fields []zap.Field
		want   slog.Level
	}{
		{"too many ops, gRPC status", zapcore.WarnLevel, []zap.Field{zap.Error(rpctypes.ErrGRPCTooManyOps)}, slog.LevelDebug},
		{"request too large, gRPC status", zapcore.WarnLevel, []zap.Field{zap.Error(rpctypes.ErrGRPCRequestTooLarge)}, slog.LevelDebug},
		{"too many ops, rpctypes value wrapped", zapcore.WarnLevel, []zap.Field{zap.Error(fmt.Errorf("txn: %w", rpctypes.ErrTooManyOps))}, slog.LevelDebug},
		{"too many ops, status built by hand", zapcore.WarnLevel, []zap.Field{zap.String("target", "x"), zap.Error(tooMany)}, slog.LevelDebug},
		{"other etcd error", zapcore.WarnLevel, []zap.Field{zap.Error(rpctypes.ErrGRPCNoLeader)}, slog.LevelWarn},
		// The wording alone is not enough: a string field, or an error that
		// merely quotes etcd's text, is not etcd refusing the transaction.
		{"text in a string field", zapcore.WarnLevel, []zap.Field{zap.String("error", rpctypes.ErrTooManyOps.Error())}, slog.LevelWarn},
		{"text quoted in another error", zapcore.WarnLevel, []zap.Field{zap.Error(errors.New("client said: " + rpctypes.ErrTooManyOps.Error()))}, slog.LevelWarn},
		{"error level", zapcore.ErrorLevel, []zap.Field{zap.Error(errors.New("boom"))}, slog.LevelError},
		{"no fields", zapcore.WarnLevel, nil, slog.LevelWarn},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &recordHandler{}
			log := zap.New(newSlogCore(slog.New(h), zapcore.DebugLevel))
			if ce := log.Check(tc.level, "retrying of unary invoker failed"); ce != nil {
				ce.Write(tc.fields...)
			}
			if len(h.levels) != 1 || h.levels[0] != tc.want {
				t.Fatalf("logged at %v, want one record at %v", h.levels, tc.want)
			}
		})
	}
}

// TestSlogCoreWithFields checks that an error carried by a logger's With
// fields counts as well as one passed to the entry.
func TestSlogCoreWithFields(t *testing.T) {
	h := &recordHandler{}
	log := zap.New(newSlogCore(slog.New(h), zapcore.DebugLevel)).With(zap.Error(rpctypes.ErrGRPCTooManyOps))
	log.Warn("retrying of unary invoker failed")
	if len(h.levels) != 1 || h.levels[0] != slog.LevelDebug {
		t.Fatalf("logged at %v, want one record at DEBUG", h.levels)
	}
}
