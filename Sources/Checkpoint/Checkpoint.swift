import Foundation
import TesseraEngine
import TesseraModels
import TesseraNN

/// What a checkpoint says about its model beyond the weights: architecture, classes, normalisation, progress.
public struct CheckpointInfo: Codable, Equatable, Sendable {
    /// The network this checkpoint holds (in the metadata as `arch` with `unet` or `resnetUNet`).
    public var network: NetworkSpec
    public var classNames: [String]
    /// RGB per class, for colour masks and overlays.
    public var classColors: [[Int]]
    /// How the training masks encode classes, by Data's `MaskKind` names (`binary`, `label`, `palette`); checked
    /// where a truth-mask decoder is made from it (Inference's `CheckpointInfo.maskKind(file:)`).
    public var maskKind: String
    public var normalizationMean: [Float]
    public var normalizationStd: [Float]
    /// Training crop, the default inference tile.
    public var crop: Int
    /// The crop `tessera train` starts from, and so the tile of an imported model unless told.
    public static let defaultCrop = Architecture.unet.defaultInputSize
    public var step: Int
    public var epoch: Int
    public var metrics: [String: Double]

    public init(
        network: NetworkSpec, classNames: [String], classColors: [[Int]], maskKind: String,
        normalizationMean: [Float], normalizationStd: [Float], crop: Int, step: Int = 0, epoch: Int = 0,
        metrics: [String: Double] = [:]
    ) {
        self.network = network
        self.classNames = classNames
        self.classColors = classColors
        self.maskKind = maskKind
        self.normalizationMean = normalizationMean
        self.normalizationStd = normalizationStd
        self.crop = crop
        self.step = step
        self.epoch = epoch
        self.metrics = metrics
    }

    public var arch: String { network.arch }

    enum CodingKeys: String, CodingKey {
        case arch, unet, resnetUNet, lenet5, resnet, classNames, classColors, maskKind, normalizationMean,
            normalizationStd, crop
        case step, epoch, metrics
    }

    /// Reads the metadata every checkpoint has had: `arch` names the network, `unet` or `resnetUNet` configures it.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let arch = try c.decode(String.self, forKey: .arch)
        do {
            network = try NetworkSpec(
                arch: arch, unet: try c.decodeIfPresent(UNetConfig.self, forKey: .unet),
                resnetUNet: try c.decodeIfPresent(ResNetUNetConfig.self, forKey: .resnetUNet),
                lenet5: try c.decodeIfPresent(LeNetConfig.self, forKey: .lenet5),
                resnet: try c.decodeIfPresent(ResNetConfig.self, forKey: .resnet))
        } catch let error as NetworkSpecError {
            throw DecodingError.dataCorruptedError(forKey: .arch, in: c, debugDescription: error.reason)
        }
        classNames = try c.decode([String].self, forKey: .classNames)
        classColors = try c.decode([[Int]].self, forKey: .classColors)
        maskKind = try c.decode(String.self, forKey: .maskKind)
        normalizationMean = try c.decode([Float].self, forKey: .normalizationMean)
        normalizationStd = try c.decode([Float].self, forKey: .normalizationStd)
        crop = try c.decode(Int.self, forKey: .crop)
        step = try c.decode(Int.self, forKey: .step)
        epoch = try c.decode(Int.self, forKey: .epoch)
        metrics = try c.decode([String: Double].self, forKey: .metrics)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(network.arch, forKey: .arch)
        try c.encodeIfPresent(network.unet, forKey: .unet)
        try c.encodeIfPresent(network.resnetUNet, forKey: .resnetUNet)
        try c.encodeIfPresent(network.lenet5, forKey: .lenet5)
        try c.encodeIfPresent(network.resnet, forKey: .resnet)
        try c.encode(classNames, forKey: .classNames)
        try c.encode(classColors, forKey: .classColors)
        try c.encode(maskKind, forKey: .maskKind)
        try c.encode(normalizationMean, forKey: .normalizationMean)
        try c.encode(normalizationStd, forKey: .normalizationStd)
        try c.encode(crop, forKey: .crop)
        try c.encode(step, forKey: .step)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(metrics, forKey: .metrics)
    }

    public var classes: Int { network.classes }

    /// The metadata key that configures the network.
    var configurationKey: CodingKeys {
        switch network {
        case .unet: return .unet
        case .resnetUNet: return .resnetUNet
        case .lenet5: return .lenet5
        case .resnet: return .resnet
        }
    }

    /// Checks every field against the network it describes, so nothing read from a file reaches a precondition,
    /// an allocation or a path unchecked. Errors name the field as the metadata spells it (`info.crop`).
    public func validate() throws {
        func fail(_ field: String, _ reason: String) -> CheckpointFieldError {
            CheckpointFieldError(field: "info." + field, reason: reason)
        }
        do { try network.validate() } catch { throw fail("arch", "\(error)") }
        let classes = self.classes, channels = network.inChannels
        guard (1...65536).contains(crop) else { throw fail("crop", "must be 1-65536, is \(crop)") }
        if network.lenet5 != nil, crop != LeNet5.inputSize {
            throw fail("crop", "LeNet-5 takes \(LeNet5.inputSize)x\(LeNet5.inputSize) images, not \(crop)")
        }
        if network.resnet != nil, crop < 32 { throw fail("crop", "a ResNet takes images of 32 pixels or more") }
        guard step >= 0 else { throw fail("step", "must be >= 0, is \(step)") }
        guard epoch >= 0 else { throw fail("epoch", "must be >= 0, is \(epoch)") }
        guard normalizationMean.count == channels, normalizationMean.allSatisfy(\.isFinite) else {
            throw fail(
                "normalizationMean",
                "needs \(channels) finite value(s), one per input channel, has \(normalizationMean)")
        }
        guard normalizationStd.count == channels, normalizationStd.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw fail(
                "normalizationStd",
                "needs \(channels) positive finite value(s), one per input channel, has \(normalizationStd)")
        }
        guard classNames.count == classes else {
            throw fail("classNames", "has \(classNames.count) name(s) for \(classes) classes")
        }
        for name in classNames {
            if let problem = SafeName.problem(component: name) {
                throw fail("classNames", "'\(name.debugDescription)' \(problem)")
            }
        }
        guard Set(classNames).count == classNames.count else { throw fail("classNames", "names repeat: \(classNames)") }
        guard classColors.count == classes,
            classColors.allSatisfy({ $0.count == 3 && $0.allSatisfy { (0...255).contains($0) } })
        else {
            throw fail("classColors", "needs \(classes) colours of three values 0-255, has \(classColors)")
        }
        guard metrics.values.allSatisfy({ !$0.isNaN }) else { throw fail("metrics", "holds NaN") }
        do { try network.checkMemory(tile: crop) } catch {
            throw fail(configurationKey.stringValue, "\(error)")
        }
    }

    /// A colour per class: the checkpoint's, or PASCAL VOC's where it has too few (the one fallback).
    public var palette: [[Int]] { classColors.count >= classes ? classColors : Self.vocColors(classes) }

    /// PASCAL VOC's palette: class i gets the colour of its index's bit pattern.
    public static func vocColors(_ count: Int) -> [[Int]] {
        (0..<count).map { i in
            var (r, g, b, c) = (0, 0, 0, i)
            for shift in stride(from: 7, through: 0, by: -1) {
                r |= (c & 1) << shift
                g |= ((c >> 1) & 1) << shift
                b |= ((c >> 2) & 1) << shift
                c >>= 3
                if c == 0 { break }
            }
            return [r, g, b]
        }
    }
}

/// Reads and writes model checkpoints: safetensors with the model's PyTorch-style keys, the optimizer state under
/// `optimizer.`, and `CheckpointInfo` (plus the training recipe) as JSON metadata. Files appear atomically.
public enum Checkpoint {
    /// - Parameter recipe: the training configuration as a JSON object (the trainer's `TrainingConfig`), kept as the
    ///   `training` metadata so a checkpoint tells how it was made. Checkpoint keeps it as text: it knows models and
    ///   their files, not data sets or augmentation.
    public static func write(
        model: Module, optimizer: Optimizer?, info: CheckpointInfo, recipe: String? = nil, to url: URL
    ) throws {
        var tensors = model.stateDict()
        if let optimizer { tensors += optimizer.state().map { ("optimizer.\($0.name)", $0.tensor) } }
        var metadata = [
            "format": "tessera-checkpoint-1", "arch": info.arch, "tessera_version": TesseraVersion.current,
            "info": String(decoding: try JSONEncoder().encode(info), as: UTF8.self)
        ]
        if let recipe { metadata["training"] = recipe }
        try SafeTensorsFile.write(tensors, metadata: metadata, to: url)
    }

    /// A checkpoint's contents: model weights by key, the metadata, and the optimizer state if any.
    public struct Contents {
        public let weights: [String: Tensor]
        public let info: CheckpointInfo
        /// The training recipe (JSON object text) when the checkpoint was trained by Tessera.
        public let recipe: String?
        public let optimizerState: [String: Tensor]
    }

    /// A loaded checkpoint: the model built from its metadata with its weights, and the rest of its contents.
    public struct Loaded {
        public let model: any SegmentationNetwork
        public let info: CheckpointInfo
        public let recipe: String?
        public let optimizerState: [String: Tensor]
    }

    /// Reads and validates a checkpoint: every metadata field (`CheckpointInfo.validate`), the training
    /// recipe a JSON object when present, and every weight finite. Errors name the file and the field.
    public static func read(_ url: URL) throws -> Contents {
        let file = try SafeTensorsFile(contentsOf: url)
        func fail(_ reason: String) -> FileError { FileError(file: url.path, reason: reason) }
        guard let text = file.metadata["info"] else { throw fail("not a Tessera checkpoint (no 'info' metadata)") }
        let info: CheckpointInfo
        do { info = try JSONDecoder().decode(CheckpointInfo.self, from: Data(text.utf8)) } catch {
            throw fail("info: cannot be read: \(DecodingProblem(error))")
        }
        do { try info.validate() } catch { throw fail("\(error)") }
        let recipe = file.metadata["training"]
        if let recipe {
            let object = try? JSONSerialization.jsonObject(with: Data(recipe.utf8))
            guard object is [String: Any] else { throw fail("training: not a JSON object") }
        }
        var weights: [String: Tensor] = [:], optimizer: [String: Tensor] = [:]
        for name in file.names {
            let tensor = try file.tensor(name)
            if let bad = tensor.scalars.first(where: { !$0.isFinite }) {
                throw fail("\(name): holds \(bad) (non-finite weights)")
            }
            if name.hasPrefix("optimizer.") {
                optimizer[String(name.dropFirst("optimizer.".count))] = tensor
            } else {
                weights[name] = tensor
            }
        }
        return Contents(weights: weights, info: info, recipe: recipe, optimizerState: optimizer)
    }

    /// Reads a segmentation checkpoint and builds its network; a classifier's is refused, naming the file.
    public static func load(_ url: URL) throws -> Loaded {
        let (contents, module) = try build(url)
        guard let model = module as? any SegmentationNetwork else {
            throw FileError(
                file: url.path,
                reason:
                    "holds a classifier (\(contents.info.arch)), not a segmentation model; the segmentation verbs cannot run it"
            )
        }
        return Loaded(
            model: model, info: contents.info, recipe: contents.recipe, optimizerState: contents.optimizerState)
    }

    /// A loaded classifier checkpoint.
    public struct LoadedClassifier {
        public let model: any ClassificationNetwork
        public let info: CheckpointInfo
        public let recipe: String?
    }

    /// Reads a classifier checkpoint and builds its network; a segmentation model's is refused, naming the file.
    public static func loadClassifier(_ url: URL) throws -> LoadedClassifier {
        let (contents, module) = try build(url)
        guard let model = module as? any ClassificationNetwork else {
            throw FileError(
                file: url.path,
                reason:
                    "holds a segmentation model (\(contents.info.arch)), not a classifier; `tessera segment` runs it")
        }
        return LoadedClassifier(model: model, info: contents.info, recipe: contents.recipe)
    }

    /// The checkpoint's contents and its network with the weights loaded, whichever the task.
    public static func build(_ url: URL) throws -> (Contents, Module) {
        let contents = try read(url)
        var g = RandomGenerator(seed: 0)
        let model: Module
        do { model = try contents.info.network.buildModule(generator: &g) } catch {
            throw FileError(file: url.path, reason: "\(error)")
        }
        do { try model.load(contents.weights) } catch { throw FileError(file: url.path, reason: "\(error)") }
        return (contents, model)
    }
}

/// A checkpoint metadata field that fails validation.
public struct CheckpointFieldError: Error, CustomStringConvertible {
    public let field: String
    public let reason: String
    public var description: String { "\(field): \(reason)" }
}

/// A JSON decoding error told as the path of the field and what was wrong with it.
struct DecodingProblem: CustomStringConvertible {
    let error: Error
    init(_ error: Error) { self.error = error }

    var description: String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }
                .description
        }
        switch error as? DecodingError {
        case .keyNotFound(let key, let c)?: return "\(path(c).isEmpty ? "" : path(c) + ".")\(key.stringValue): missing"
        case .typeMismatch(_, let c)?, .valueNotFound(_, let c)?, .dataCorrupted(let c)?:
            return "\(path(c)): \(c.debugDescription)"
        default: return "\(error)"
        }
    }
}
