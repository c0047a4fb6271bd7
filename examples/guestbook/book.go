package main

import (
	"context"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/interceptors"
)

// book is the guestbook, served as grpc.testing.TestService so that the
// example needs no proto of its own:
//
//   - UnaryCall signs the book: the payload body is the message; the
//     response names the signer (capability "post").
//   - StreamingOutputCall follows the book: every entry so far, then each
//     new one as it is signed, until the caller leaves.
//   - FullDuplexCall chats: every message is answered with
//     "<user>: <message>" (capability "chat").
//
// Every method knows its caller from interceptors.SessionFromContext.
type book struct {
	testgrpc.UnimplementedTestServiceServer

	mu        sync.Mutex
	entries   []string
	followers map[chan string]struct{}
	closed    chan struct{} // closed by close: followers end
}

// followerBuffer is how many entries a follower may fall behind before it
// is cut off.
const followerBuffer = 64

func newBook() *book {
	return &book{followers: map[chan string]struct{}{}, closed: make(chan struct{})}
}

// close ends every follow stream, so that a graceful stop does not wait
// for them.
func (b *book) close() { close(b.closed) }

var errShuttingDown = status.Error(codes.Unavailable, "the guestbook is shutting down")

func user(ctx context.Context) string {
	s, _ := interceptors.SessionFromContext(ctx)
	return s.UserID
}

func (b *book) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	msg := string(req.GetPayload().GetBody())
	if msg == "" {
		return nil, status.Error(codes.InvalidArgument, "payload.body: the message to sign with is empty")
	}
	entry := fmt.Sprintf("%s: %s", user(ctx), msg)
	b.mu.Lock()
	b.entries = append(b.entries, entry)
	for ch := range b.followers {
		select {
		case ch <- entry:
		default: // too far behind: cut off (see StreamingOutputCall)
			delete(b.followers, ch)
			close(ch)
		}
	}
	b.mu.Unlock()
	return &testgrpc.SimpleResponse{Username: user(ctx), Payload: &testgrpc.Payload{Body: []byte(entry)}}, nil
}

func (b *book) StreamingOutputCall(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
	ch := make(chan string, followerBuffer)
	b.mu.Lock()
	past := append([]string(nil), b.entries...)
	b.followers[ch] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.followers, ch)
		b.mu.Unlock()
	}()
	send := func(entry string) error {
		return ss.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: []byte(entry)}})
	}
	for _, e := range past {
		if err := send(e); err != nil {
			return err
		}
	}
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return status.Error(codes.ResourceExhausted, "fell too far behind the guestbook; follow it again")
			}
			if err := send(e); err != nil {
				return err
			}
		case <-ss.Context().Done():
			// Banned, revoked or gone: the interceptor turns a ban or a
			// revocation into its status, whatever is returned here.
			return ss.Context().Err()
		case <-b.closed:
			return errShuttingDown
		}
	}
}

func (b *book) FullDuplexCall(ss testgrpc.TestService_FullDuplexCallServer) error {
	// Receive in a goroutine so that the handler also watches its context:
	// a ban then ends the chat even while the client is silent.
	msgs := make(chan *testgrpc.StreamingOutputCallRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := ss.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-ss.Context().Done():
				return
			}
		}
	}()
	who := user(ss.Context())
	for {
		select {
		case m := <-msgs:
			reply := fmt.Sprintf("%s: %s", who, m.GetPayload().GetBody())
			if err := ss.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: []byte(reply)}}); err != nil {
				return err
			}
		case err := <-recvErr:
			if err == io.EOF {
				return nil // the client closed its side: a clean end
			}
			return err
		case <-ss.Context().Done():
			return ss.Context().Err()
		case <-b.closed:
			return errShuttingDown
		}
	}
}
