import Foundation
import TesseraEngine
import TesseraNN

/// Which network a run or checkpoint holds: a segmenter (`unet`, `resnetN-unet`) or a classifier (`lenet5`,
/// `resnetN`), N = 18, 34, 50, 101, 152.
public enum NetworkSpec: Equatable, Sendable {
    /// The plain U-Net (Ronneberger et al. 2015) with Tessera's options.
    case unet(UNetConfig)
    /// segmentation_models_pytorch's `Unet(encoder_name="resnetN")`.
    case resnetUNet(ResNetUNetConfig)
    /// LeNet-5 (LeCun et al. 1998) on 32x32 images.
    case lenet5(LeNetConfig)
    /// torchvision's `resnetN` classifier.
    case resnet(ResNetConfig)

    public init(unet: UNetConfig) { self = .unet(unet) }
    public init(resnetUNet: ResNetUNetConfig) { self = .resnetUNet(resnetUNet) }

    /// The description a checkpoint's metadata spells (`arch` and the configuration of that architecture), so
    /// every checkpoint written before this type was an enum loads unchanged; a name that is unknown or has no
    /// configuration is refused with the names there are.
    public init(
        arch: String, unet: UNetConfig?, resnetUNet: ResNetUNetConfig?, lenet5: LeNetConfig? = nil,
        resnet: ResNetConfig? = nil
    ) throws {
        if arch == "unet", let unet {
            self = .unet(unet)
        } else if let r = resnetUNet, NetworkSpec.resnetEncoder(of: arch) == r.encoder {
            self = .resnetUNet(r)
        } else if arch == Architecture.lenet5.rawValue, let lenet5 {
            self = .lenet5(lenet5)
        } else if let resnet, arch == "resnet\(resnet.depth)" {
            self = .resnet(resnet)
        } else {
            throw NetworkSpecError(
                reason:
                    "unknown architecture '\(arch)' or no configuration for it (\(NetworkSpec.names.joined(separator: ", ")))"
            )
        }
    }

    /// The one builder of a network from user settings (`tessera train`, a pipeline's `model` section, `tessera
    /// import`): every value checked against `NetworkLimits` and the architecture, before anything is allocated.
    /// `unet` holds the plain U-Net's options; `decoderChannels` smp's (nil: its default).
    public static func make(
        _ architecture: Architecture, inChannels: Int, classes: Int, unet options: UNetOptions = UNetOptions(),
        decoderChannels: [Int]? = nil
    ) throws -> NetworkSpec {
        func fail(_ reason: String) -> NetworkSpecError { NetworkSpecError(reason: reason) }
        guard NetworkLimits.inChannels.contains(inChannels) else {
            throw fail("input channels must be \(NetworkLimits.inChannels), is \(inChannels)")
        }
        guard NetworkLimits.classes.contains(classes) else {
            throw fail("classes must be \(NetworkLimits.classes), is \(classes)")
        }
        if architecture.task == .classify {
            return try make(classifier: architecture, inChannels: inChannels, classes: classes)
        }
        guard let encoder = architecture.resnetEncoder else {
            guard NetworkLimits.unetDepth.contains(options.depth), NetworkLimits.unetWidth.contains(options.width)
            else {
                throw fail("U-Net depth must be \(NetworkLimits.unetDepth) and width \(NetworkLimits.unetWidth)")
            }
            guard (0..<1).contains(options.dropout) else { throw fail("dropout must be in [0, 1)") }
            return .unet(
                UNetConfig(
                    inChannels: inChannels, classes: classes, depth: options.depth, width: options.width,
                    batchNorm: options.batchNorm, dropout: Float(options.dropout), upsampling: options.upsampling,
                    padding: options.padding))
        }
        let decoder = decoderChannels ?? ResNetUNetConfig.defaultDecoderChannels
        guard decoder.count == 5, decoder.allSatisfy({ NetworkLimits.decoderChannels.contains($0) }) else {
            throw fail("decoder channels take five values 1-4096 (smp's default 256,128,64,32,16), has \(decoder)")
        }
        return .resnetUNet(
            ResNetUNetConfig(encoder: encoder, inChannels: inChannels, classes: classes, decoderChannels: decoder))
    }

    /// A classifier's description, channels and classes checked against `NetworkLimits`.
    static func make(classifier: Architecture, inChannels: Int, classes: Int) throws -> NetworkSpec {
        let spec: NetworkSpec
        if let depth = classifier.resnetDepth {
            spec = .resnet(ResNetConfig(depth: depth, inChannels: inChannels, classes: classes))
        } else {
            spec = .lenet5(LeNetConfig(inChannels: inChannels, classes: classes))
        }
        try spec.validate()
        return spec
    }

    /// The checkpoint metadata's name: `unet`, `resnetN-unet`, `lenet5` or `resnetN`.
    public var arch: String {
        switch self {
        case .unet: return "unet"
        case .resnetUNet(let r): return "resnet\(r.encoder)-unet"
        case .lenet5: return Architecture.lenet5.rawValue
        case .resnet(let r): return "resnet\(r.depth)"
        }
    }

    /// What the network does with an image.
    public var task: NetworkTask {
        switch self {
        case .unet, .resnetUNet: return .segment
        case .lenet5, .resnet: return .classify
        }
    }

    public var lenet5: LeNetConfig? {
        if case .lenet5(let c) = self { return c }
        return nil
    }

    public var resnet: ResNetConfig? {
        if case .resnet(let c) = self { return c }
        return nil
    }

    public var unet: UNetConfig? {
        if case .unet(let u) = self { return u }
        return nil
    }

    public var resnetUNet: ResNetUNetConfig? {
        if case .resnetUNet(let r) = self { return r }
        return nil
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

    public var classes: Int {
        switch self {
        case .unet(let u): return u.classes
        case .resnetUNet(let r): return r.classes
        case .lenet5(let c): return c.classes
        case .resnet(let c): return c.classes
        }
    }

    public var inChannels: Int {
        switch self {
        case .unet(let u): return u.inChannels
        case .resnetUNet(let r): return r.inChannels
        case .lenet5(let c): return c.inChannels
        case .resnet(let c): return c.inChannels
        }
    }

    /// Throws unless a ResNet's depth is one torchvision has and the channel and class counts are within
    /// `NetworkLimits` (a decoded file may say anything).
    public func validate() throws {
        if case .resnetUNet(let r) = self, ResNetConfig.blocks[r.encoder] == nil || r.decoderChannels.count != 5 {
            throw NetworkSpecError(reason: "no ResNet encoder of depth \(r.encoder) with five decoder blocks")
        }
        if task == .classify {
            guard NetworkLimits.inChannels.contains(inChannels), NetworkLimits.classes.contains(classes) else {
                throw NetworkSpecError(
                    reason: "\(arch): input channels must be \(NetworkLimits.inChannels) and classes "
                        + "\(NetworkLimits.classes), are \(inChannels) and \(classes)")
            }
        }
    }

    /// The network with fresh weights from `generator`, whichever its task.
    public func buildModule(generator: inout RandomGenerator) throws -> Module {
        try validate()
        switch self {
        case .unet(let u): return UNet(u, generator: &generator)
        case .resnetUNet(let r): return ResNetUNet(r, generator: &generator)
        case .lenet5(let c): return LeNet5(c, generator: &generator)
        case .resnet(let c): return ResNet(c, generator: &generator)
        }
    }

    /// The segmentation network with fresh weights; a classifier is refused with what to use instead.
    public func build(generator: inout RandomGenerator) throws -> any SegmentationNetwork {
        guard let network = try buildModule(generator: &generator) as? any SegmentationNetwork else {
            throw NetworkSpecError(
                reason: "\(arch) is a classifier, not a segmentation model; the segmentation verbs cannot run it")
        }
        return network
    }

    /// The classifier with fresh weights; a segmentation network is refused with what to use instead.
    public func buildClassifier(generator: inout RandomGenerator) throws -> any ClassificationNetwork {
        guard let network = try buildModule(generator: &generator) as? any ClassificationNetwork else {
            throw NetworkSpecError(
                reason: "\(arch) is a segmentation model, not a classifier; `tessera segment` runs it")
        }
        return network
    }
}

/// The plain U-Net's options as a user gives them (`tessera train`, `tessera import --arch unet`).
public struct UNetOptions: Equatable, Sendable {
    public var depth = 4, width = 32
    public var batchNorm = true
    public var dropout = 0.0
    public var upsampling = UNetConfig.Upsampling.transposed
    public var padding = UNetConfig.ConvPadding.same
    public init() {}
}

/// A network description that names no buildable architecture.
public struct NetworkSpecError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

/// What a network does with an image: a mask per image (`segment`) or a class per image (`classify`).
public enum NetworkTask: String, Codable, CaseIterable, Sendable {
    case segment, classify
}

/// Every network `--model` (a pipeline's `arch`) names: the segmenters (`unet`, `resnetN-unet`) and the
/// classifiers (`lenet5`, torchvision's `resnetN`); `task` says which.
public enum Architecture: String, Codable, CaseIterable, Sendable {
    case unet
    case resnet18UNet = "resnet18-unet"
    case resnet34UNet = "resnet34-unet"
    case resnet50UNet = "resnet50-unet"
    case resnet101UNet = "resnet101-unet"
    case resnet152UNet = "resnet152-unet"
    case lenet5
    case resnet18, resnet34, resnet50, resnet101, resnet152

    /// The ResNet encoder's depth of a ResNet U-Net, nil for any other network.
    public var resnetEncoder: Int? { NetworkSpec.resnetEncoder(of: rawValue) }

    /// The depth of a ResNet classifier, nil for any other network.
    public var resnetDepth: Int? {
        guard rawValue.hasPrefix("resnet"), !rawValue.hasSuffix("-unet") else { return nil }
        return Int(rawValue.dropFirst("resnet".count))
    }

    /// What the network does with an image.
    public var task: NetworkTask { self == .lenet5 || resnetDepth != nil ? .classify : .segment }

    /// The architectures of one task, as help and errors list them.
    public static func names(of task: NetworkTask) -> String {
        allCases.filter { $0.task == task }.map(\.rawValue).joined(separator: ", ")
    }

    /// The input size a classifier trains at unless told: LeNet-5's fixed 32, torchvision's 224 for a ResNet;
    /// a segmenter's training crop.
    public var defaultInputSize: Int {
        if self == .lenet5 { return LeNet5.inputSize }
        return resnetDepth != nil ? 224 : 256
    }
}
