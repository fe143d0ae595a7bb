import Foundation
import TesseraData
import TesseraEngine
import TesseraModels
import TesseraNN

/// What a checkpoint says about its model beyond the weights: architecture, classes, normalisation, progress.
public struct CheckpointInfo: Codable, Equatable, Sendable {
    public var arch: String
    public var unet: UNetConfig?
    public var resnetUNet: ResNetUNetConfig?
    public var classNames: [String]
    /// RGB per class, for colour masks and overlays.
    public var classColors: [[Int]]
    public var maskKind: String
    public var normalizationMean: [Float]
    public var normalizationStd: [Float]
    /// Training crop, the default inference tile.
    public var crop: Int
    public var step: Int
    public var epoch: Int
    public var metrics: [String: Double]

    public init(network: NetworkSpec, classNames: [String], classColors: [[Int]], maskKind: String,
                normalizationMean: [Float], normalizationStd: [Float], crop: Int, step: Int = 0, epoch: Int = 0,
                metrics: [String: Double] = [:]) {
        arch = network.arch
        unet = network.unet
        resnetUNet = network.resnetUNet
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

    /// The network this checkpoint holds.
    public var network: NetworkSpec { NetworkSpec(arch: arch, unet: unet, resnetUNet: resnetUNet) }

    public var classes: Int { network.classes }

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
/// `optimizer.`, and `CheckpointInfo` (plus the training configuration) as JSON metadata. Files appear atomically.
public enum Checkpoint {
    public static func write(model: Module, optimizer: Optimizer?, info: CheckpointInfo, training: TrainingConfig?,
                             to url: URL) throws {
        var tensors = model.stateDict()
        if let optimizer { tensors += optimizer.state().map { ("optimizer.\($0.name)", $0.tensor) } }
        var metadata = ["format": "tessera-checkpoint-1", "arch": info.arch,
                        "info": String(decoding: try JSONEncoder().encode(info), as: UTF8.self)]
        if let training { metadata["training"] = String(decoding: try JSONEncoder().encode(training), as: UTF8.self) }
        try SafeTensorsFile.write(tensors, metadata: metadata, to: url)
    }

    /// A checkpoint's contents: model weights by key, the metadata, and the optimizer state if any.
    public struct Contents {
        public let weights: [String: Tensor]
        public let info: CheckpointInfo
        public let training: TrainingConfig?
        public let optimizerState: [String: Tensor]
    }

    /// A loaded checkpoint: the model built from its metadata with its weights, and the rest of its contents.
    public struct Loaded {
        public let model: any SegmentationNetwork
        public let info: CheckpointInfo
        public let training: TrainingConfig?
        public let optimizerState: [String: Tensor]
    }

    public static func read(_ url: URL) throws -> Contents {
        let file = try SafeTensorsFile(contentsOf: url)
        func fail(_ reason: String) -> SafeTensorsError { SafeTensorsError(file: url.path, reason: reason) }
        guard let text = file.metadata["info"], let info = try? JSONDecoder().decode(CheckpointInfo.self, from: Data(text.utf8)) else {
            throw fail("not a Tessera checkpoint (no 'info' metadata)")
        }
        do { try info.network.validate() } catch { throw fail("\(error)") }
        let training = file.metadata["training"].flatMap { try? JSONDecoder().decode(TrainingConfig.self, from: Data($0.utf8)) }
        var weights: [String: Tensor] = [:], optimizer: [String: Tensor] = [:]
        for name in file.names {
            if name.hasPrefix("optimizer.") { optimizer[String(name.dropFirst("optimizer.".count))] = try file.tensor(name) }
            else { weights[name] = try file.tensor(name) }
        }
        return Contents(weights: weights, info: info, training: training, optimizerState: optimizer)
    }

    public static func load(_ url: URL) throws -> Loaded {
        let contents = try read(url)
        var g = RandomGenerator(seed: 0)
        let model: any SegmentationNetwork
        do { model = try contents.info.network.build(generator: &g) } catch {
            throw SafeTensorsError(file: url.path, reason: "\(error)")
        }
        do { try model.load(contents.weights) } catch { throw SafeTensorsError(file: url.path, reason: "\(error)") }
        return Loaded(model: model, info: contents.info, training: contents.training, optimizerState: contents.optimizerState)
    }
}
