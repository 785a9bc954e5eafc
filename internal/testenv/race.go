//go:build race

package testenv

// raceEnabled makes DaemonBinary build nbh-sync with the race detector
// when the tests run under it, so that races of the real process (HTTP,
// cron, fsnotify and passes at once) fail the test too.
const raceEnabled = true
