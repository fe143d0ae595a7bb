import TesseraCLI

// The executable is only this: the commands live in TesseraCLI, where tests run them in-process.
Tessera.main()
