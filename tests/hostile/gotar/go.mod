module layerscan/gotar

go 1.19
