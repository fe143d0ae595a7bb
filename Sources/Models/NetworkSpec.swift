import Foundation
import TesseraEngine
import TesseraNN

/// Which segmentation network a run or checkpoint holds: `unet`, or `resnetN-unet` (N = 18, 34, 50, 101, 152).
public struct NetworkSpec: Codable, Equatable, Sendable {
    public var arch: String
    public var unet: UNetConfig?
    public var resnetUNet: ResNetUNetConfig?

    public init(arch: String, unet: UNetConfig?, resnetUNet: ResNetUNetConfig?) {
        self.arch = arch
        self.unet = unet
        self.resnetUNet = resnetUNet
    }

    public init(unet: UNetConfig) {
        arch = "unet"
        self.unet = unet
    }

    public init(resnetUNet: ResNetUNetConfig) {
        arch = "resnet\(resnetUNet.encoder)-unet"
        self.resnetUNet = resnetUNet
    }

    /// The architectures `--model` accepts.
    public static let names = Architecture.allCases.map(\.rawValue)

    /// The encoder depth of a `resnetN-unet` name, nil for any other.
    public static func resnetEncoder(of name: String) -> Int? {
        guard name.hasPrefix("resnet"), name.hasSuffix("-unet"),
            let n = Int(name.dropFirst("resnet".count).dropLast("-unet".count)), ResNetConfig.blocks[n] != nil
        else {
            return nil
        }
        return n
    }

    public var classes: Int { unet?.classes ?? resnetUNet?.classes ?? 0 }
    public var inChannels: Int { unet?.inChannels ?? resnetUNet?.inChannels ?? 0 }

    /// Throws unless the name is known and its configuration is present.
    public func validate() throws {
        if arch == "unet", unet != nil { return }
        if let r = resnetUNet, NetworkSpec.resnetEncoder(of: arch) == r.encoder { return }
        throw NetworkSpecError(
            reason:
                "unknown architecture '\(arch)' or no configuration for it (\(NetworkSpec.names.joined(separator: ", ")))"
        )
    }

    /// The network with fresh weights from `generator`.
    public func build(generator: inout RandomGenerator) throws -> any SegmentationNetwork {
        try validate()
        if let unet, arch == "unet" { return UNet(unet, generator: &generator) }
        return ResNetUNet(resnetUNet!, generator: &generator)
    }
}

/// A network description that names no buildable architecture.
public struct NetworkSpecError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

/// The segmentation networks a training run builds (`--model`, a pipeline's `arch`).
public enum Architecture: String, Codable, CaseIterable, Sendable {
    case unet
    case resnet18UNet = "resnet18-unet"
    case resnet34UNet = "resnet34-unet"
    case resnet50UNet = "resnet50-unet"
    case resnet101UNet = "resnet101-unet"
    case resnet152UNet = "resnet152-unet"

    /// The ResNet encoder's depth of a ResNet U-Net, nil for the plain U-Net.
    public var resnetEncoder: Int? { NetworkSpec.resnetEncoder(of: rawValue) }
}
