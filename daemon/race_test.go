//go:build race

package daemon

// raceEnabled makes the process tests build nbh-sync with the race
// detector when they run under it, so that races of the real process (HTTP,
// cron, fsnotify and passes at once) fail the test too.
const raceEnabled = true
