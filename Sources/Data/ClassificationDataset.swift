import Foundation
import TesseraEngine

/// Images with one class each, in either layout PyTorch users have: torchvision's `ImageFolder` (a sub-folder per
/// class, class names the folder names sorted, images found at any depth below them) or a CSV of `path,label`
/// (paths relative to the CSV's folder; a first row `path,label` is a header; class names the labels sorted,
/// numerically when every label is an integer).
public struct ClassificationDataset: Sendable {
    public struct Sample: Equatable, Sendable {
        public let image: URL
        public let label: Int
        /// The image's path below the data set's root without its extension (`cat/0001`): unique, stable, what
        /// `--val-names` and reports use.
        public let name: String
    }

    public let classNames: [String]
    public private(set) var samples: [Sample]
    /// The input channels every image is converted to when loaded; nil keeps each image's own.
    public var channels: Int?

    /// Reads `url`: a folder in the ImageFolder layout, or a `.csv` file. `classNames`, when given, fixes the
    /// classes and their order (a validation set read with its model's classes); a label outside them is refused.
    /// - Throws: a `FileError` naming the folder, the CSV line or the image that is wrong.
    public init(_ url: URL, classNames: [String]? = nil) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
            throw FileError(file: url.path, reason: "no such file or folder")
        }
        let found: [(URL, String, String)]
        if isFolder.boolValue {
            found = try Self.imageFolder(url)
        } else {
            guard url.pathExtension.lowercased() == "csv" else {
                throw FileError(
                    file: url.path, reason: "neither a folder of class sub-folders nor a .csv of path,label")
            }
            found = try Self.csv(url)
        }
        let labels = Set(found.map(\.2))
        let names = classNames ?? Self.sortedLabels(labels)
        guard names.count >= 2 else {
            throw FileError(file: url.path, reason: "holds \(names.count) class(es); classification needs two or more")
        }
        var index: [String: Int] = [:]
        for (i, name) in names.enumerated() { index[name] = i }
        samples = try found.map { image, name, label in
            guard let id = index[label] else {
                throw FileError(
                    file: image.path,
                    reason: "label '\(label)' is not one of the classes \(names.joined(separator: ", "))")
            }
            return Sample(image: image, label: id, name: name)
        }
        self.classNames = names
    }

    init(classNames: [String], samples: [Sample], channels: Int?) {
        self.classNames = classNames
        self.samples = samples
        self.channels = channels
    }

    /// Class names in order: numerically when every label is an integer (`2` before `10`), else as strings.
    static func sortedLabels(_ labels: Set<String>) -> [String] {
        let numbers = labels.compactMap { Int($0) }
        if numbers.count == labels.count { return numbers.sorted().map(String.init) }
        return labels.sorted()
    }

    /// (image, name, label) for every image below `root`'s class folders.
    static func imageFolder(_ root: URL) throws -> [(URL, String, String)] {
        let fm = FileManager.default
        let classes: [URL]
        do {
            classes = try fm.contentsOfDirectory(at: root, includingPropertiesForKeys: [.isDirectoryKey])
                .filter { (try? $0.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true }
                .filter { !$0.lastPathComponent.hasPrefix(".") }
                .sorted { $0.lastPathComponent < $1.lastPathComponent }
        } catch {
            throw FileError(file: root.path, reason: "cannot list folder: \((error as NSError).localizedDescription)")
        }
        var found: [(URL, String, String)] = []
        for folder in classes {
            let label = folder.lastPathComponent
            let files = (fm.enumerator(at: folder, includingPropertiesForKeys: nil)?.allObjects as? [URL] ?? [])
                .filter { ImageFormat.fileExtensions.contains($0.pathExtension.lowercased()) }
                .map { $0.standardizedFileURL }
                .sorted { $0.path < $1.path }
            let base = folder.standardizedFileURL.path + "/"
            for file in files {
                let relative = file.deletingPathExtension().path.dropFirst(base.count)
                found.append((file, "\(label)/\(relative)", label))
            }
        }
        guard !found.isEmpty else {
            throw FileError(file: root.path, reason: "no images in class sub-folders (expected ROOT/CLASS/IMAGE.png)")
        }
        return found
    }

    /// (image, name, label) for every row of a `path,label` CSV.
    static func csv(_ url: URL) throws -> [(URL, String, String)] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw FileError(file: url.path, reason: "cannot read: \((error as NSError).localizedDescription)")
        }
        let base = url.deletingLastPathComponent()
        var found: [(URL, String, String)] = [], names = Set<String>()
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            if number == 0 && fields.map({ $0.lowercased() }) == ["path", "label"] { continue }
            guard fields.count == 2, !fields[0].isEmpty, !fields[1].isEmpty else {
                throw FileError(file: url.path, reason: "line \(number + 1): expected 'path,label', got '\(line)'")
            }
            let image =
                fields[0].hasPrefix("/") ? URL(fileURLWithPath: fields[0]) : base.appendingPathComponent(fields[0])
            let name = (fields[0] as NSString).deletingPathExtension
            guard names.insert(name).inserted else {
                throw FileError(file: url.path, reason: "line \(number + 1): '\(fields[0])' is listed twice")
            }
            found.append((image, name, fields[1]))
        }
        guard !found.isEmpty else { throw FileError(file: url.path, reason: "lists no images") }
        return found
    }

    /// A seeded split stratified by class: `validationFraction` of each class (at least one where the class has
    /// two or more images) goes to validation, so a rare class is never missing from either side.
    public func split(validationFraction: Double, seed: UInt64) -> (
        train: ClassificationDataset, validation: ClassificationDataset
    ) {
        var g = RandomGenerator(seed: seed)
        var validation = Set<Int>()
        for label in classNames.indices {
            var members = samples.indices.filter { samples[$0].label == label }
            for i in stride(from: members.count - 1, to: 0, by: -1) { members.swapAt(i, g.nextInt(i + 1)) }
            guard members.count >= 2, validationFraction > 0 else { continue }
            let count = min(members.count - 1, max(1, Int((Double(members.count) * validationFraction).rounded())))
            validation.formUnion(members.prefix(count))
        }
        return (subset { !validation.contains($0) }, subset { validation.contains($0) })
    }

    /// A split by name: samples whose `name` is listed go to validation.
    public func split(validationNames: Set<String>) -> (
        train: ClassificationDataset, validation: ClassificationDataset
    ) {
        (subset { !validationNames.contains(samples[$0].name) }, subset { validationNames.contains(samples[$0].name) })
    }

    /// Every `count`-th sample from `index`.
    public func shard(_ index: Int, of count: Int) -> ClassificationDataset {
        subset { $0 % max(1, count) == index }
    }

    func subset(_ keep: (Int) -> Bool) -> ClassificationDataset {
        ClassificationDataset(
            classNames: classNames, samples: samples.indices.filter(keep).map { samples[$0] }, channels: channels)
    }

    /// Decodes sample `index`, converted to `channels` channels when set.
    /// - Throws: a `FileError` naming the image when it cannot be decoded or converted.
    public func load(_ index: Int) throws -> Image {
        let sample = samples[index]
        let image = try ImageCodec.decode(sample.image)
        guard let channels else { return image }
        return try image.converted(toChannels: channels, file: sample.image.path)
    }
}
