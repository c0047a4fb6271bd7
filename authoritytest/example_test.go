package authoritytest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// A mirror that follows the authority refuses a user once they are
// banned. In a test, authoritytest.Start(t, ...) replaces New and Close.
func Example() {
	a, err := authoritytest.New(authoritytest.Options{})
	if err != nil {
		panic(err)
	}
	defer a.Close()
	ctx := context.Background()
	admin := a.Dial()

	// A service's mirror, with a key that may only watch.
	watcher := a.Dial(client.WithAPIKey(a.NewAPIKey("guestbook", "events:watch")))
	m, stop, err := client.StartMirror(ctx, watcher, client.MirrorOptions{Clock: a.Clock().Now})
	if err != nil {
		panic(err)
	}
	defer stop()

	s, err := admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: "alice"})
	if err != nil {
		panic(err)
	}
	_, err = m.Check(ctx, s.GetAccessToken(), client.CheckInput{})
	fmt.Println("before the ban:", err)

	if _, err := admin.Bans.CreateBan(ctx, &pb.CreateBanRequest{
		Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "alice"}}, Reason: "spam"}); err != nil {
		panic(err)
	}
	if err := m.WaitRevision(ctx, a.Revision()); err != nil {
		panic(err)
	}
	_, err = m.Check(ctx, s.GetAccessToken(), client.CheckInput{})
	fmt.Println("after the ban, banned:", errors.Is(err, client.ErrUserBanned))
	// Output:
	// before the ban: <nil>
	// after the ban, banned: true
}
