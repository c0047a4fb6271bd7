package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// freeAddr returns a loopback address with a port that was free a moment
// ago (for listeners whose address a test must know before they start, or
// reuse across a restart).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServeConfig runs `serve` in-process with cfg (defaults filled in)
// and returns the gRPC address it logged and a stop function, like
// startServe. Log lines go to logs when it is not nil.
func startServeConfig(t *testing.T, cfg serveConfig, logs io.Writer) (addr string, stop func() error) {
	t.Helper()
	if cfg.listen == "" {
		cfg.listen = "127.0.0.1:0"
	}
	if cfg.logFormat == "" {
		cfg.logFormat = "json"
	}
	if cfg.logLevel == "" {
		cfg.logLevel = "info"
	}
	if cfg.checkpointInterval == 0 {
		cfg.checkpointInterval = time.Second
	}
	if cfg.retainRevisions == 0 {
		cfg.retainRevisions = 1000
	}
	if cfg.shutdownTimeout == 0 {
		cfg.shutdownTimeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, cfg, pw); pw.Close() }()
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if logs != nil {
			logs.Write(append(sc.Bytes(), '\n'))
		}
		var line struct {
			Msg  string `json:"msg"`
			GRPC string `json:"grpc"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "portcullis serving" {
			addr = line.GRPC
			break
		}
	}
	if addr == "" {
		cancel()
		t.Fatalf("serve did not start: %v", <-errc)
	}
	if logs == nil {
		logs = io.Discard
	}
	go io.Copy(logs, pr)
	var stopped bool
	return addr, func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-errc
	}
}

// startServeAt runs `serve` on a given gRPC address.
func startServeAt(t *testing.T, data, addr string) (string, func() error) {
	return startServeConfig(t, serveConfig{listen: addr, dataDir: data}, nil)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
