package manifest

import "slices"

// OrderImages sorts names so that every image comes after the site images
// it is built FROM (bases maps an image to them), names in order where
// nothing constrains them. An image on a FROM cycle, or built on one, is
// left out of order; each cycle is returned once, as the path a → b → a,
// starting at its least name.
func OrderImages(names []string, bases map[string][]string) (order []string, cycles [][]string) {
	const (
		unseen = iota
		visiting
		done
		broken
	)
	state := map[string]int{}
	var stack []string
	var visit func(n string) bool // false when n is on or over a cycle
	visit = func(n string) bool {
		switch state[n] {
		case done:
			return true
		case broken:
			return false
		case visiting:
			i := slices.Index(stack, n)
			cyc := slices.Clone(stack[i:])
			least := slices.Index(cyc, slices.Min(cyc))
			cyc = append(cyc[least:], cyc[:least]...)
			cycles = append(cycles, append(cyc, cyc[0]))
			return false
		}
		state[n] = visiting
		stack = append(stack, n)
		ok := true
		for _, b := range bases[n] {
			ok = visit(b) && ok
		}
		stack = stack[:len(stack)-1]
		if !ok {
			state[n] = broken
			return false
		}
		state[n] = done
		order = append(order, n)
		return true
	}
	sorted := slices.Sorted(slices.Values(names))
	for _, n := range sorted {
		visit(n)
	}
	// A base named in FROM but not among names is not the site's: drop it.
	order = slices.DeleteFunc(order, func(n string) bool { return !slices.Contains(names, n) })
	return order, cycles
}
