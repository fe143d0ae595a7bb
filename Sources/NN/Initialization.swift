import Foundation
import TesseraEngine

/// Weight initialisers (Kaiming, Xavier, PyTorch's layer defaults), seeded.
public enum Initialization {
    /// Fan-in and fan-out of a weight [out, in, k...] (or [in, out, k...] when `transposed`).
    public static func fans(_ shape: [Int], transposed: Bool = false) -> (fanIn: Int, fanOut: Int) {
        let receptive = shape.count > 2 ? shape[2...].reduce(1, *) : 1
        let a = shape[0], b = shape.count > 1 ? shape[1] : 1
        return transposed ? (a * receptive, b * receptive) : (b * receptive, a * receptive)
    }

    /// Uniform in [-bound, bound].
    public static func uniform(_ shape: [Int], bound: Float, generator: inout RandomGenerator) -> Tensor {
        Tensor.uniform(shape, low: -bound, high: bound, generator: &generator)
    }

    /// Kaiming (He) normal with gain sqrt(2) for ReLU, on fan-in (default) or fan-out.
    public static func kaimingNormal(_ shape: [Int], fanOut: Bool = false, generator: inout RandomGenerator) -> Tensor {
        let f = fans(shape)
        let std = (2 / Float(fanOut ? f.fanOut : f.fanIn)).squareRoot()
        return Tensor.randn(shape, generator: &generator) * std
    }

    /// Kaiming (He) uniform with gain sqrt(2 / (1 + a^2)).
    public static func kaimingUniform(
        _ shape: [Int], a: Float = 0, fanOut: Bool = false, transposed: Bool = false,
        generator: inout RandomGenerator
    ) -> Tensor {
        let f = fans(shape, transposed: transposed)
        let gain = (2 / (1 + a * a)).squareRoot()
        let bound = gain * (3 / Float(fanOut ? f.fanOut : f.fanIn)).squareRoot()
        return uniform(shape, bound: bound, generator: &generator)
    }

    /// Xavier (Glorot) uniform.
    public static func xavierUniform(_ shape: [Int], gain: Float = 1, generator: inout RandomGenerator) -> Tensor {
        let f = fans(shape)
        let bound = gain * (6 / Float(f.fanIn + f.fanOut)).squareRoot()
        return uniform(shape, bound: bound, generator: &generator)
    }

    /// PyTorch's default for conv and linear layers: kaiming_uniform(a=sqrt(5)) weights, U(±1/sqrt(fan_in)) bias.
    public static func torchDefault(
        weight shape: [Int], transposed: Bool = false,
        generator: inout RandomGenerator
    ) -> (weight: Tensor, bias: Tensor) {
        let w = kaimingUniform(shape, a: Float(5).squareRoot(), transposed: transposed, generator: &generator)
        let fanIn = fans(shape, transposed: transposed).fanIn
        let bound = 1 / Float(fanIn).squareRoot()
        let outChannels = transposed ? shape[1] : shape[0]
        return (w, uniform([outChannels], bound: bound, generator: &generator))
    }
}
