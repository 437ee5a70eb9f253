import CodCLI

await Cod.runMain()
