// Package docs holds no code: its test keeps README.md, the pages of this
// folder and bench/README.md honest — the README's size, every relative
// link and #anchor, every `nbh-sync COMMAND` and every `make TARGET` they
// mention.
package docs
