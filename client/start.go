package client

import (
	"context"
	"fmt"
	"sync"

	"github.com/portcullis-dev/portcullis/rpcerr"
)

// StartMirror starts a Mirror of c's authority (Run, in a goroutine of its
// own) and returns it once it has loaded its first snapshot, so that its
// checks can succeed, with stop, which ends Run and waits for it to return
// (call it once the server using the mirror has stopped).
//
// ctx bounds the start only: the mirror runs until stop. StartMirror fails,
// the mirror stopped, when ctx ends before the first snapshot, or as soon as
// the authority refuses the API key (ErrAPIKeyInvalid, ErrPermissionDenied:
// errors no retry fixes), rather than leave a service refusing every call.
func StartMirror(ctx context.Context, c *Client, opts MirrorOptions) (*Mirror, func(), error) {
	if c == nil {
		return nil, nil, fmt.Errorf("%w: StartMirror: nil Client", rpcerr.ErrInvalidArgument)
	}
	m := NewMirror(c, opts)
	refused := make(chan error, 1)
	m.refused = func(err error) {
		select {
		case refused <- err:
		default:
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = m.Run(runCtx)
	}()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	var err error
	select {
	case <-m.synced:
		return m, stop, nil
	case err = <-refused:
	case <-done:
		err = runErr
	case <-ctx.Done():
		err = ctx.Err()
	}
	stop()
	return nil, nil, fmt.Errorf("client: mirror not synced: %w", err)
}
