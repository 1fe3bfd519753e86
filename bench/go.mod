module github.com/ucsec/ucsec/bench

go 1.26.0
