import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine
import TesseraInference
import TesseraModels
import TesseraNN

/// A model in evaluation mode as `tessera explain` sees it: a Tessera checkpoint (segmenter or classifier), or a
/// classifier given as a torchvision-named ResNet state dict in safetensors (optional metadata `mean`, `std`,
/// `classes` as JSON lists).
public struct ExplainModel {
    public let module: Module
    /// The segmentation network, nil for a classifier.
    public let segmenter: (any SegmentationNetwork)?
    public let inChannels: Int
    public let classNames: [String]
    public let mean: [Float], std: [Float]
    /// The colour of each class, for segmentation outlines.
    public let classColors: [[Int]]
    /// How its truth masks encode classes (`--masks`): the checkpoint's, label ids for a classifier.
    public let maskKind: MaskKind
    /// The edge a Tessera classifier was trained at: each image is explained as `tessera classify` sees it
    /// (`Image.classifierView(size:)`); nil: at its own size.
    public var inputSize: Int?

    public var classes: Int { classNames.count }

    /// Loads `url`; `mean`/`std` override the file's normalisation (a classifier without any gets ImageNet's for
    /// three channels, 0.5 / 0.25 for one).
    public static func load(_ url: URL, mean: [Float]? = nil, std: [Float]? = nil) throws -> ExplainModel {
        let file = try SafeTensorsFile(contentsOf: url)
        if let text = file.metadata["info"],
            let info = try? JSONDecoder().decode(CheckpointInfo.self, from: Data(text.utf8)),
            info.network.task == .classify
        {
            let loaded = try Checkpoint.loadClassifier(url)
            loaded.model.eval()
            let info = loaded.info
            var model = ExplainModel(
                module: loaded.model, segmenter: nil, inChannels: loaded.model.inChannels,
                classNames: info.classNames, mean: mean ?? info.normalizationMean, std: std ?? info.normalizationStd,
                classColors: info.palette, maskKind: .label)
            model.inputSize = info.crop
            return model
        }
        if file.metadata["info"] != nil {
            let loaded = try Checkpoint.load(url)
            loaded.model.eval()
            let info = loaded.info
            return ExplainModel(
                module: loaded.model, segmenter: loaded.model, inChannels: loaded.model.inChannels,
                classNames: info.classNames, mean: mean ?? info.normalizationMean,
                std: std ?? info.normalizationStd,
                classColors: info.palette,
                maskKind: try info.maskKind(file: url))
        }
        func fail(_ reason: String) -> FileError { FileError(file: url.path, reason: reason) }
        var shapes: [String: [Int]] = [:]
        for entry in file.entries { shapes[entry.name] = entry.shape }
        guard let config = ResNetConfig.inferred(fromShapes: shapes), config.classes > 0 else {
            throw fail("neither a Tessera checkpoint nor a torchvision ResNet classifier (conv1, layer1-4, fc)")
        }
        var g = RandomGenerator(seed: 0)
        let model = ResNet(config, generator: &g)
        var state: [String: Tensor] = [:]
        for name in file.names { state[name] = try file.tensor(name) }
        do { try model.load(state) } catch { throw fail("\(error)") }
        model.eval()
        func floats(_ key: String) -> [Float]? {
            file.metadata[key].flatMap { try? JSONDecoder().decode([Float].self, from: Data($0.utf8)) }
        }
        let names = file.metadata["classes"].flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
        let c = config.inChannels
        let defaults = PretrainedNormalization.meanStd(channels: c)
        let m = mean ?? floats("mean") ?? defaults.mean
        let s = std ?? floats("std") ?? defaults.std
        guard m.count == c, m.allSatisfy(\.isFinite) else { throw fail("mean: needs \(c) finite values, has \(m)") }
        guard s.count == c, s.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw fail("std: needs \(c) positive values, has \(s)")
        }
        var classNames = (0..<config.classes).map { "class\($0)" }
        if let names, names.count == config.classes {
            for name in names {
                if let problem = SafeName.problem(component: name) {
                    throw fail("classes: '\(name.debugDescription)' \(problem)")
                }
            }
            classNames = names
        }
        return ExplainModel(
            module: model, segmenter: nil, inChannels: c, classNames: classNames, mean: m, std: s,
            classColors: CheckpointInfo.vocColors(config.classes), maskKind: .label)
    }

    /// The layer explained when none is named: the last convolutional stage (ResNet `layer4`, the last decoder
    /// level of a U-Net), else the last convolution.
    public var defaultLayer: String {
        switch module {
        case is ResNet: return "layer4"
        case is LeNet5: return "conv2"
        case let unet as UNet: return "decoder.\(unet.decoder.count - 1)"
        case is ResNetUNet:
            let blocks = module.namedModules().map(\.name).filter {
                $0.hasPrefix("decoder.blocks.") && !$0.dropFirst(15).contains(".")
            }
            return blocks.last ?? "decoder"
        default:
            return module.namedModules().last { $0.module is Conv }?.name ?? ""
        }
    }

    /// The class index of `text` (an index or a class name).
    public func classIndex(_ text: String) throws -> Int {
        if let i = Int(text), (0..<classes).contains(i) { return i }
        if let i = classNames.firstIndex(of: text) { return i }
        throw CAMError(
            reason: "unknown class '\(text)' (0-\(classes - 1) or one of \(classNames.joined(separator: ", ")))")
    }
}
