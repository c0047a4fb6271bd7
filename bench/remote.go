package main

import (
	"errors"
	"flag"
)

// checkRemote validates -authority and its companions. The memory and
// fan-out rows need a fresh, empty authority of their own (they start one
// per run), so -authority turns them off; asking for them explicitly, or
// for -store, is an error rather than a silent local measurement.
func checkRemote(fs *flag.FlagSet, c *config) error {
	if c.remote == "" {
		return nil
	}
	if c.remoteKey == "" {
		return errors.New("-authority needs an admin API key: -api-key or $PORTCULLIS_API_KEY")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["store"] || (set["mem-bans"] && c.memBans > 0) || (set["fanout"] && c.fanout > 0) || c.coldStartBans > 0 {
		return errors.New("-authority measures a running authority: -store, -mem-bans, -fanout and -coldstart-bans need the harness's own")
	}
	c.memBans, c.fanout = 0, 0
	return nil
}
