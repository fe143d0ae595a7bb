extension String {
    /// The UTF-8 text of a C buffer up to its first NUL (an error message a C shim filled in, a host name).
    public init(nulTerminated buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
