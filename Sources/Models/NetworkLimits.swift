/// The sizes a network configuration may have, stated once: configurations decoded from checkpoints, training
/// settings, pipeline files and `tessera import` are all checked against these (a 2000-class model once trained
/// and then could not be loaded, its checkpoint being checked against a smaller limit than its training).
public enum NetworkLimits {
    public static let inChannels = 1...64
    public static let classes = 1...1024
    public static let unetDepth = 1...8
    public static let unetWidth = 1...1024
    public static let decoderChannels = 1...4096
}
