using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace Incept.Tests.Build;

/// <summary>
/// Incept never hands libtorch a <c>Scalar</c> that nothing keeps alive.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 passes a <c>Scalar</c>'s native handle as a bare pointer, so a temporary one (an implicit
/// conversion from a number, or the <c>alpha = 1</c> that <c>Tensor.add(Tensor)</c> makes for itself) can be
/// finalised by the garbage collector while libtorch still reads it. That surfaced as "For integral input
/// tensors, argument alpha must not be a floating point number" in training and as "Expected false to be true"
/// from <c>c10::Scalar::toDouble</c> in an ONNX test. The rule is: every scalar is owned (<c>ToScalar()</c> with
/// <c>using</c>, or a process-lifetime one), and TorchSharp methods that make temporaries are not called.
/// This test reads the IL: it finds every TorchSharp method that converts a number to a <c>Scalar</c>,
/// directly or through the TorchSharp methods it calls, and fails on each call to one from Incept's assemblies or
/// these tests (whose arithmetic with numbers goes through <c>OwnedScalars</c>).
/// </remarks>
public class ScalarLifetimeTests
{
    [Fact]
    public void No_Incept_or_test_method_calls_a_TorchSharp_method_that_makes_a_temporary_Scalar()
    {
        var torchSharp = IlIndex.Read(typeof(TorchSharp.Scalar).Assembly.Location);
        var risky = torchSharp.MethodsReaching(m => m.Type == "Scalar" && m.Name == "op_Implicit");
        // The scan finds what it should: the parameterless-alpha add and BatchNorm's own counter update.
        Assert.Contains("Tensor::add(Tensor)", risky);
        Assert.Contains("Tensor::op_Addition(Tensor,Tensor)", risky);
        Assert.Contains("BatchNorm::forward(Tensor)", risky);
        Assert.DoesNotContain("Tensor::add(Tensor,Scalar)", risky);

        var offenders = new List<string>();
        foreach (var assembly in new[] { typeof(Incept.Models.InceptionModel).Assembly, typeof(Incept.Cli.InceptCli).Assembly, typeof(ScalarLifetimeTests).Assembly })
        {
            foreach (var (caller, callee) in IlIndex.Read(assembly.Location).ExternalCalls())
            {
                if (risky.Contains(callee) && !caller.EndsWith(PlantedExample, StringComparison.Ordinal))
                    offenders.Add($"{caller} calls {callee}");
            }
        }
        Assert.True(offenders.Count == 0, "Temporary TorchSharp scalars (own them with ToScalar() and using):\n" + string.Join("\n", offenders));
    }

    [Fact]
    public void The_scan_sees_a_temporary_Scalar_in_this_test_assembly()
    {
        // This assembly holds ImplicitAdd below, so a scan that never matches would fail here.
        var calls = IlIndex.Read(typeof(ScalarLifetimeTests).Assembly.Location).ExternalCalls()
            .Where(c => c.Caller.EndsWith(PlantedExample, StringComparison.Ordinal))
            .Select(c => c.Callee).ToList();
        Assert.Contains("Tensor::add(Tensor)", calls);
        Assert.Contains("Scalar::op_Implicit(Double)", calls);
    }

    private const string PlantedExample = "ScalarLifetimeTests::ImplicitAdd";

    internal static TorchSharp.torch.Tensor ImplicitAdd(TorchSharp.torch.Tensor a, TorchSharp.torch.Tensor b) => a.add(b).mul(2.0);

    /// <summary>The call graph of one assembly, read from its IL; members named <c>Type::name(parameter types)</c>.</summary>
    private sealed class IlIndex
    {
        private static readonly Dictionary<ushort, OpCode> OpCodesByValue = typeof(OpCodes)
            .GetFields(BindingFlags.Public | BindingFlags.Static)
            .Select(f => (OpCode)f.GetValue(null)!)
            .ToDictionary(o => (ushort)o.Value);

        private readonly Dictionary<string, HashSet<string>> _calls = new(StringComparer.Ordinal);
        private readonly HashSet<string> _defined = new(StringComparer.Ordinal);
        private readonly List<(string Caller, string Callee)> _external = [];

        public static IlIndex Read(string path)
        {
            var index = new IlIndex();
            using var stream = File.OpenRead(path);
            using var pe = new PEReader(stream);
            var md = pe.GetMetadataReader();
            var names = new SignatureNames();
            foreach (var typeHandle in md.TypeDefinitions)
            {
                var type = md.GetTypeDefinition(typeHandle);
                foreach (var methodHandle in type.GetMethods())
                {
                    var method = md.GetMethodDefinition(methodHandle);
                    string self = Key(md.GetString(type.Name), md.GetString(method.Name), method.DecodeSignature(names, null));
                    index._defined.Add(self);
                    var callees = index._calls.TryGetValue(self, out var set) ? set : index._calls[self] = new HashSet<string>(StringComparer.Ordinal);
                    if (method.RelativeVirtualAddress == 0) continue;
                    string caller = $"{md.GetString(type.Namespace)}.{md.GetString(type.Name)}::{md.GetString(method.Name)}";
                    foreach (var (callee, external) in CallsIn(md, pe.GetMethodBody(method.RelativeVirtualAddress), names))
                    {
                        callees.Add(callee);
                        if (external) index._external.Add((caller, callee));
                    }
                }
            }
            return index;
        }

        public List<(string Caller, string Callee)> ExternalCalls() => _external;

        /// <summary>Methods of this assembly that call a method matching <paramref name="seed"/>, directly or not, and those methods.</summary>
        public HashSet<string> MethodsReaching(Func<(string Type, string Name), bool> seed)
        {
            var reached = new HashSet<string>(_calls.Values.SelectMany(v => v).Concat(_defined)
                .Where(k => seed(Split(k))), StringComparer.Ordinal);
            bool grew = true;
            while (grew)
            {
                grew = false;
                foreach (var (method, callees) in _calls)
                    if (!reached.Contains(method) && callees.Overlaps(reached)) grew = reached.Add(method) | grew;
            }
            return reached;
        }

        private static (string Type, string Name) Split(string key)
        {
            int colons = key.IndexOf("::", StringComparison.Ordinal);
            int paren = key.IndexOf('(', StringComparison.Ordinal);
            return (key[..colons], key[(colons + 2)..paren]);
        }

        private static string Key(string type, string name, MethodSignature<string> signature) =>
            $"{type}::{name}({string.Join(",", signature.ParameterTypes)})";

        private static List<(string Callee, bool External)> CallsIn(MetadataReader md, MethodBodyBlock body, SignatureNames names)
        {
            var il = body.GetILReader();
            var found = new List<(string Callee, bool External)>();
            while (il.RemainingBytes > 0)
            {
                ushort value = il.ReadByte();
                if (value == 0xFE) value = (ushort)(0xFE00 | il.ReadByte());
                var op = OpCodesByValue[value];
                switch (op.OperandType)
                {
                    case OperandType.InlineNone: break;
                    case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar: il.ReadByte(); break;
                    case OperandType.InlineVar: il.ReadInt16(); break;
                    case OperandType.InlineI8 or OperandType.InlineR: il.ReadInt64(); break;
                    case OperandType.InlineSwitch:
                        int targets = il.ReadInt32();
                        for (int i = 0; i < targets; i++) il.ReadInt32();
                        break;
                    case OperandType.InlineMethod:
                        if (Resolve(md, MetadataTokens.EntityHandle(il.ReadInt32()), names) is { } call) found.Add(call);
                        break;
                    default: il.ReadInt32(); break;
                }
            }
            return found;
        }

        private static (string, bool)? Resolve(MetadataReader md, EntityHandle token, SignatureNames names)
        {
            switch (token.Kind)
            {
                case HandleKind.MethodDefinition:
                    var def = md.GetMethodDefinition((MethodDefinitionHandle)token);
                    return (Key(md.GetString(md.GetTypeDefinition(def.GetDeclaringType()).Name), md.GetString(def.Name), def.DecodeSignature(names, null)), false);
                case HandleKind.MemberReference:
                    var member = md.GetMemberReference((MemberReferenceHandle)token);
                    if (member.GetKind() != MemberReferenceKind.Method || member.Parent.Kind != HandleKind.TypeReference) return null;
                    string type = md.GetString(md.GetTypeReference((TypeReferenceHandle)member.Parent).Name);
                    return (Key(type, md.GetString(member.Name), member.DecodeMethodSignature(names, null)), true);
                case HandleKind.MethodSpecification:
                    return Resolve(md, md.GetMethodSpecification((MethodSpecificationHandle)token).Method, names);
                default:
                    return null;
            }
        }
    }

    /// <summary>Type names as both sides of a call spell them: simple names, generic arguments by position.</summary>
    private sealed class SignatureNames : ISignatureTypeProvider<string, object?>
    {
        public string GetArrayType(string elementType, ArrayShape shape) => elementType + "[,]";
        public string GetByReferenceType(string elementType) => elementType + "&";
        public string GetFunctionPointerType(MethodSignature<string> signature) => "fnptr";
        public string GetGenericInstantiation(string genericType, ImmutableArray<string> typeArguments) => $"{genericType}<{string.Join(",", typeArguments)}>";
        public string GetGenericMethodParameter(object? genericContext, int index) => "!!" + index;
        public string GetGenericTypeParameter(object? genericContext, int index) => "!" + index;
        public string GetModifiedType(string modifier, string unmodifiedType, bool isRequired) => unmodifiedType;
        public string GetPinnedType(string elementType) => elementType;
        public string GetPointerType(string elementType) => elementType + "*";
        public string GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode.ToString();
        public string GetSZArrayType(string elementType) => elementType + "[]";
        public string GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => reader.GetString(reader.GetTypeDefinition(handle).Name);
        public string GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => reader.GetString(reader.GetTypeReference(handle).Name);
        public string GetTypeFromSpecification(MetadataReader reader, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind) => "spec";
    }
}
