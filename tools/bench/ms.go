package bench

import (
	"math"
	"time"
)

// ms formats d in milliseconds with one decimal.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*10) / 10
}
