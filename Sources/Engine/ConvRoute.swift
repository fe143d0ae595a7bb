import Foundation

/// The ways the convolution core can compute one pass. Which is fastest depends on the layer's shape and on the
/// machine (vector width, cache sizes), so the choice is made by measurement (`ConvPlanCache`), not by rule.
public enum ConvRoute: String, CaseIterable, Codable, Sendable {
    /// Stride-1 2-d convolutions: source rows copied once per band into a zero-padded buffer that the packed
    /// micro-kernel reads directly (no im2col).
    case rowBand = "row-band"
    /// Bounded im2col tiles packed for the micro-kernel: every geometry (strided, 3-d, transposed, dilated).
    case im2col
    /// Transposed products (the input gradient of a strided convolution, a transposed convolution): a GEMM of
    /// the weights with the source into columns, scattered into the output (col2im). Its gathering work grows
    /// with the source, not with the output times the kernel as im2col's does: a 7x7 stride-2 stem's input
    /// gradient through im2col reads 49 taps per output pixel, 3/4 of them zero.
    case col2im
    /// Weight gradient over row bands with the row-reduction ("dot") kernel: few output channels.
    case rowBandDot = "row-band-dot"
    /// Weight gradient over row bands with both operands transposed into packed panels: many output channels.
    case rowBandPacked = "row-band-packed"

    /// Routes that compute a forward-style pass (forward, input gradient, transposed forward).
    public static let productRoutes: [ConvRoute] = [.rowBand, .im2col, .col2im]
    /// Routes that compute a weight gradient.
    public static let weightGradientRoutes: [ConvRoute] = [.rowBandDot, .rowBandPacked, .im2col]

    /// A route forced for the current task (tests compare every route on the same layer; benchmarks time each).
    /// Where the forced route does not apply to a layer's pass, the measured choice is used.
    @TaskLocal public static var forced: ConvRoute?

    /// Runs `body` with every convolution pass that can take `route` taking it.
    public static func forcing<R>(_ route: ConvRoute?, _ body: () throws -> R) rethrows -> R {
        try $forced.withValue(route, operation: body)
    }
}

/// Which pass of a convolution a plan is for.
enum ConvPass: String, Sendable {
    case product, weightGradient = "weight-gradient"
}
